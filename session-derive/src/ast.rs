//! The derive's input as a small IR: the struct, its fields, their attributes.

use syn::{
    Data, DeriveInput, Fields, GenericArgument, Generics, Ident, PathArguments, Type, Visibility,
};

use crate::attr::{self, ContainerAttrs, FieldAttrs};
use crate::errors::Errors;

pub(crate) struct Input<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) vis: &'a Visibility,
    pub(crate) generics: &'a Generics,
    pub(crate) attrs: ContainerAttrs,
    pub(crate) fields: Vec<Field<'a>>,
}

pub(crate) struct Field<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    pub(crate) attrs: FieldAttrs,
    /// Whether the type is spelled `Option<_>`, which earns the field a `take_` accessor.
    pub(crate) is_option: bool,
}

impl<'a> Input<'a> {
    /// Fails only on a shape that has no fields to work with; attribute errors go to `errors`.
    pub(crate) fn from_syn(input: &'a DeriveInput, errors: &mut Errors) -> syn::Result<Self> {
        const SUPPORTED: &str =
            "SessionData supports structs with named fields, such as `struct Visit { count: u64 }`";
        let named = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => named,
                Fields::Unnamed(fields) => {
                    return Err(syn::Error::new_spanned(
                        fields,
                        format!(
                            "{SUPPORTED}; tuple structs have no field names to make accessors from"
                        ),
                    ));
                }
                Fields::Unit => {
                    return Err(syn::Error::new_spanned(
                        &input.ident,
                        format!("{SUPPORTED}; a unit struct has nothing to store"),
                    ));
                }
            },
            Data::Enum(data) => {
                return Err(syn::Error::new_spanned(
                    data.enum_token,
                    format!("{SUPPORTED}, not enums; wrap the enum in a field of a struct"),
                ));
            }
            Data::Union(data) => {
                return Err(syn::Error::new_spanned(
                    data.union_token,
                    format!("{SUPPORTED}, not unions"),
                ));
            }
        };
        let attrs = attr::container(&input.attrs, errors);
        let fields = named
            .named
            .iter()
            .map(|field| Field {
                // Named fields always have an ident.
                ident: field.ident.as_ref().unwrap_or(&input.ident),
                ty: &field.ty,
                attrs: attr::field(&field.attrs, errors),
                is_option: is_option(&field.ty),
            })
            .collect();
        Ok(Self {
            ident: &input.ident,
            vis: &input.vis,
            generics: &input.generics,
            attrs,
            fields,
        })
    }
}

impl Input<'_> {
    /// The `#[session(index)]` field, if any (validation allows one).
    pub(crate) fn indexed_field(&self) -> Option<&Field<'_>> {
        self.fields.iter().find(|field| field.attrs.index.is_some())
    }

    /// The `#[session(csrf)]` field with its dirty-bit index (the first, should there be
    /// several: validation reports the others).
    pub(crate) fn csrf_field(&self) -> Option<(usize, &Field<'_>)> {
        self.fields
            .iter()
            .enumerate()
            .find(|(_, field)| field.attrs.csrf.is_some())
    }
}

impl Field<'_> {
    /// The key the field is stored under: its `rename`, else its name.
    pub(crate) fn stored_key(&self) -> String {
        self.attrs.rename.as_ref().map_or_else(
            || syn::ext::IdentExt::unraw(self.ident).to_string(),
            syn::LitStr::value,
        )
    }

    pub(crate) fn is_persisted(&self) -> bool {
        self.attrs.memory_only.is_none()
    }
}

/// `Option<T>`, `std::option::Option<T>` or `core::option::Option<T>`, as written. A type alias
/// of `Option` is not recognised (a macro sees no types), and that field simply gets no `take_`.
fn is_option(ty: &Type) -> bool {
    option_inner(ty).is_some()
}

/// `T` of a type written `Option<T>` (see [`is_option`]).
pub(crate) fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let segments: Vec<_> = path.path.segments.iter().collect();
    let prefix_ok = match segments.as_slice() {
        [_] => path.path.leading_colon.is_none(),
        [root, module, _] => {
            (root.ident == "std" || root.ident == "core") && module.ident == "option"
        }
        _ => false,
    };
    let last = segments.last()?;
    if !prefix_ok || last.ident != "Option" {
        return None;
    }
    match &last.arguments {
        PathArguments::AngleBracketed(args) if args.args.len() == 1 => match &args.args[0] {
            GenericArgument::Type(inner) => Some(inner),
            _ => None,
        },
        _ => None,
    }
}

/// The methods generated for one field: their names, or (in `expand`) their signatures.
pub(crate) struct Accessors<T = Ident> {
    pub(crate) get: T,
    pub(crate) set: T,
    pub(crate) update: T,
    /// `take_foo`, for `Option` fields only.
    pub(crate) take: Option<T>,
}

impl<T> Accessors<T> {
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        [&self.get, &self.set, &self.update]
            .into_iter()
            .chain(self.take.as_ref())
    }
}

impl<T> IntoIterator for Accessors<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::array::IntoIter<T, 3>, std::option::IntoIter<T>>;

    fn into_iter(self) -> Self::IntoIter {
        [self.get, self.set, self.update]
            .into_iter()
            .chain(self.take)
    }
}

impl Field<'_> {
    pub(crate) fn accessors(&self) -> Accessors {
        let name = syn::ext::IdentExt::unraw(self.ident);
        let span = self.ident.span();
        Accessors {
            get: self.ident.clone(),
            set: Ident::new(&format!("set_{name}"), span),
            update: Ident::new(&format!("update_{name}"), span),
            take: self
                .is_option
                .then(|| Ident::new(&format!("take_{name}"), span)),
        }
    }
}
