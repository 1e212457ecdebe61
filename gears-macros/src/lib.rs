//! `#[gears::register]`: makes a function known to Gears by name.
//!
//! The macro is deliberately thin: it checks the signature, then emits the function unchanged
//! plus one `gears::registry::FunctionEntry` in a link-time list. All logic is in the library.

use proc_macro::TokenStream;
use quote::{format_ident, quote, ToTokens};
use syn::spanned::Spanned;
use syn::{parse_macro_input, FnArg, ItemFn, ReturnType, Type};

/// Registers a function that builds a Gears flow, under its own name.
///
/// Accepted signatures: `fn name() -> R` or `fn name(args: &[String]) -> R`, where `R` is a
/// `GearsBuilder<T>` (or a `Result` of one). The first line of the function's documentation
/// is shown by `RG.DUMPFUNCTIONS`.
///
/// ```ignore
/// use gears::prelude::*;
///
/// /// Counts keys.
/// #[gears::register]
/// fn key_count() -> GearsBuilder<u64> {
///     GearsBuilder::new(KeysOnlyReader::new("*")).count()
/// }
/// ```
#[proc_macro_attribute]
pub fn register(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new(attr.span(), "#[gears::register] takes no arguments")
            .to_compile_error()
            .into();
    }
    let func = parse_macro_input!(item as ItemFn);
    match expand(&func) {
        Ok(tokens) => tokens.into(),
        Err(e) => {
            let mut out = e.to_compile_error();
            func.to_tokens(&mut out);
            out.into()
        }
    }
}

fn expand(func: &ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let sig = &func.sig;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "#[gears::register] functions cannot be generic: Gears calls them by name",
        ));
    }
    if let Some(a) = &sig.asyncness {
        return Err(syn::Error::new(
            a.span(),
            "#[gears::register] functions cannot be async",
        ));
    }
    if let Some(u) = &sig.unsafety {
        return Err(syn::Error::new(
            u.span(),
            "#[gears::register] functions cannot be unsafe",
        ));
    }
    match &sig.output {
        ReturnType::Type(..) => {}
        ReturnType::Default => {
            return Err(syn::Error::new(
                sig.ident.span(),
                "#[gears::register] functions must return the flow they build, e.g. `-> GearsBuilder<u64>`",
            ))
        }
    }
    let takes_args = match sig.inputs.len() {
        0 => false,
        1 => {
            let arg = sig.inputs.first().expect("one input");
            let ok = matches!(arg, FnArg::Typed(pt) if is_string_slice(&pt.ty));
            if !ok {
                return Err(syn::Error::new(
                    arg.span(),
                    "the only parameter of a #[gears::register] function must be `args: &[String]`",
                ));
            }
            true
        }
        _ => {
            return Err(syn::Error::new(
                sig.inputs.span(),
                "#[gears::register] functions take no parameter or one `args: &[String]`",
            ))
        }
    };

    let name = &sig.ident;
    let name_str = name.to_string();
    let doc = first_doc_line(func);
    let entry = format_ident!("__GEARS_REGISTER_{}", name_str.to_uppercase());
    let kind = if takes_args {
        quote! { ::gears::registry::kind_of_with_args(#name) }
    } else {
        quote! { ::gears::registry::kind_of_nullary(#name) }
    };
    let call = if takes_args {
        quote! { #name(args) }
    } else {
        quote! {{
            if !args.is_empty() {
                return ::core::result::Result::Err(::gears::error::GearsError::Invalid(
                    ::std::format!("function '{}' takes no ARGS", #name_str),
                ));
            }
            #name()
        }}
    };
    Ok(quote! {
        #func

        #[doc(hidden)]
        #[::gears::__private::linkme::distributed_slice(::gears::registry::FUNCTIONS)]
        #[linkme(crate = ::gears::__private::linkme)]
        static #entry: ::gears::registry::FunctionEntry = ::gears::registry::FunctionEntry {
            name: #name_str,
            doc: #doc,
            kind: #kind,
            takes_args: #takes_args,
            build: {
                fn build(
                    args: &[::std::string::String],
                ) -> ::core::result::Result<::gears::registry::Built, ::gears::error::GearsError> {
                    ::gears::registry::IntoRegistered::into_registered(#call)
                }
                build
            },
        };
    })
}

fn is_string_slice(ty: &Type) -> bool {
    let Type::Reference(r) = ty else { return false };
    if r.mutability.is_some() {
        return false;
    }
    let Type::Slice(s) = r.elem.as_ref() else {
        return false;
    };
    matches!(s.elem.as_ref(), Type::Path(p) if p.path.segments.last().is_some_and(|seg| seg.ident == "String"))
}

fn first_doc_line(func: &ItemFn) -> String {
    func.attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .find_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => {
                    let line = s.value().trim().to_string();
                    (!line.is_empty()).then_some(line)
                }
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_default()
}
