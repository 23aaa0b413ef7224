//! Paging: listings answer `{"items": [...], "next": cursor}`; `next` is
//! null on the last page and is passed back as `?after=`.

use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

/// `?limit=&after=` of a paged listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Most items in the page.
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: u64,
    /// The `next` cursor of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// The default page size.
pub fn default_limit() -> u64 {
    50
}

/// A page of a listing, whatever its items.
pub trait Listing {
    /// What the listing holds.
    type Item;
    /// The page's items and its `next` cursor.
    fn into_parts(self) -> (Vec<Self::Item>, Option<String>);
}

/// Declares a listing of `$item`: `{"items": [...], "next": ...}`.
macro_rules! listing {
    ($(#[$doc:meta])* $name:ident of $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        pub struct $name {
            /// This page's items.
            pub items: Vec<$item>,
            /// The cursor of the next page (`?after=`); null on the last.
            #[schema(required = true)]
            pub next: Option<String>,
        }

        impl $crate::list::Listing for $name {
            type Item = $item;
            fn into_parts(self) -> (Vec<$item>, Option<String>) {
                (self.items, self.next)
            }
        }

        impl $name {
            /// The whole listing as one page.
            pub fn all(items: Vec<$item>) -> $name {
                $name { items, next: None }
            }
        }
    };
}
pub(crate) use listing;
