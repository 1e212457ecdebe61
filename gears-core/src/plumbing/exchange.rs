//! Exchanges: the end of a stage, where each record is routed to a shard (kept as a typed
//! vector when it stays, encoded in batches by [`crate::codec`] when it leaves), and the
//! first node of the next stage, which reads what the exchange delivered.

use std::marker::PhantomData;
use std::sync::Arc;

use super::chain::{drive_chain, drive_one, Chain};
use super::pull::{drain, Node, Pull, StageCx, StageInput, StepId};
use super::stage::{RouteCx, StageOutput, StageRunner};
use crate::codec::{decode_batch, BatchEncoder};
use crate::error::GearsError;
use crate::record::{PartitionKey, Record};

/// Decides the destination shard of a record at an exchange.
pub(crate) trait Router<T>: Send + Sync + 'static {
    const KIND: &'static str;
    fn route(&self, record: &T, route: &RouteCx, key: &mut Vec<u8>) -> Result<usize, String>;
}

/// Everything goes to the initiator (`collect`).
pub(crate) struct ToInitiator;

impl<T> Router<T> for ToInitiator {
    const KIND: &'static str = "collect";
    fn route(&self, _: &T, route: &RouteCx, _: &mut Vec<u8>) -> Result<usize, String> {
        Ok(route.initiator)
    }
}

/// Each record goes to the owner of its key's hash slot (`repartition`).
pub(crate) struct ByKey<F>(pub(crate) F);

impl<T, K, F> Router<T> for ByKey<F>
where
    F: Fn(&T) -> K + Send + Sync + 'static,
    K: PartitionKey,
{
    const KIND: &'static str = "repartition";
    fn route(&self, record: &T, route: &RouteCx, key: &mut Vec<u8>) -> Result<usize, String> {
        key.clear();
        (self.0)(record).key_bytes(key);
        Ok(route.topology.owner_of_key(key))
    }
}

/// Pairs go to the owner of their first element (the key of grouping steps).
pub(crate) struct ByPairKey;

impl<K: PartitionKey, V> Router<(K, V)> for ByPairKey {
    const KIND: &'static str = "repartition";
    fn route(&self, record: &(K, V), route: &RouteCx, key: &mut Vec<u8>) -> Result<usize, String> {
        key.clear();
        record.0.key_bytes(key);
        Ok(route.topology.owner_of_key(key))
    }
}

pub(crate) struct ExchangeStage<C: Chain, R> {
    pub(crate) head: Arc<dyn Node<C::In>>,
    pub(crate) chain: Arc<C>,
    pub(crate) router: R,
    pub(crate) step: StepId,
}

impl<C, R> StageRunner for ExchangeStage<C, R>
where
    C: Chain,
    C::Out: Record,
    R: Router<C::Out>,
{
    fn run(
        &self,
        input: &mut StageInput,
        cx: &mut StageCx<'_>,
        route: &RouteCx,
    ) -> Result<StageOutput, GearsError> {
        let shards = route.topology.len();
        // The per-event path of `sync` registrations: one record made from the event, its
        // effects only, on one shard, nobody reading step counters: no run to open, no batch.
        if shards == 1 && !cx.keep_output && !cx.profile && cx.stats.is_empty() {
            if let Some(record) = self.head.open_one(input) {
                drive_one(&*self.chain, record, cx, |_, _| Ok(()));
                if cx.aborted() {
                    return Err(GearsError::Aborted);
                }
                return Ok(StageOutput {
                    local: Box::new(()),
                    remote: Vec::new(),
                });
            }
        }
        let mut pull = self.head.open(input)?;
        let me = route.topology.me();
        let mut local: Vec<C::Out> = Vec::new();
        // One encoder slot per peer; none at all on a single shard (the per-event hot path).
        let mut encoders: Vec<Option<BatchEncoder>> = if shards > 1 {
            (0..shards).map(|_| None).collect()
        } else {
            Vec::new()
        };
        let mut remote = Vec::new();
        let mut key = Vec::new();
        let mut routed = 0usize;
        let keep = cx.keep_output;
        drain(&mut *pull, cx, |batch, cx| {
            drive_chain(&*self.chain, batch, cx, Some(self.step), |record, at| {
                routed += 1;
                if shards == 1 {
                    if keep {
                        local.push(record);
                    }
                    return Ok(());
                }
                at.set(R::KIND);
                let dest = self.router.route(&record, route, &mut key)?;
                if dest == me {
                    local.push(record);
                    return Ok(());
                }
                let encoder =
                    encoders[dest].get_or_insert_with(|| BatchEncoder::new(route.message_bytes));
                if let Some(full) = encoder.push(&record).map_err(|e| e.to_string())? {
                    remote.push((dest, full));
                }
                Ok(())
            });
            Ok(())
        })?;
        for (dest, encoder) in encoders.iter_mut().enumerate() {
            if let Some(last) = encoder.as_mut().and_then(BatchEncoder::finish) {
                remote.push((dest, last));
            }
        }
        cx.book(self.step, routed, None);
        Ok(StageOutput {
            // A dropped output is a unit box: no allocation.
            local: if keep || shards > 1 {
                Box::new(local)
            } else {
                Box::new(())
            },
            remote,
        })
    }
}

/// The first node of a stage after an exchange: reads what the exchange delivered.
pub(crate) struct ExchangeSource<T> {
    pub(crate) _t: PhantomData<fn() -> T>,
}

struct ExchangePull<T> {
    local: Vec<std::vec::IntoIter<T>>,
    remote: std::vec::IntoIter<Vec<u8>>,
}

impl<T: Record> Node<T> for ExchangeSource<T> {
    fn open(&self, input: &mut StageInput) -> Result<Box<dyn Pull<T>>, GearsError> {
        let inbox = input.inbox.take().unwrap_or_default();
        let local = inbox
            .local
            .into_iter()
            .map(|part| {
                part.downcast::<Vec<T>>()
                    .map(|v| v.into_iter())
                    .map_err(|_| GearsError::Internal("exchange carried the wrong type".into()))
            })
            .rev() // consumed from the back
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Box::new(ExchangePull {
            local,
            remote: inbox.remote.into_iter(),
        }))
    }
}

impl<T: Record> Pull<T> for ExchangePull<T> {
    fn pull(&mut self, cx: &mut StageCx<'_>, out: &mut Vec<T>) -> Result<bool, GearsError> {
        while let Some(part) = self.local.last_mut() {
            let before = out.len();
            out.extend(part.by_ref().take(cx.batch));
            if part.len() == 0 {
                self.local.pop();
            }
            if out.len() > before {
                return Ok(true);
            }
        }
        match self.remote.next() {
            Some(batch) => {
                out.extend(decode_batch::<T>(&batch)?);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
