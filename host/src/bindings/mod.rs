//! The generated bindings of `wit/tasks.wit`. Generated types are named
//! only here and in this module's children: [`convert`] maps them to the
//! crate's public types, [`kv_link`] implements the imported `kv-backend`
//! interface on a borrowed view of a call's state.

mod convert;
pub(crate) mod kv_link;

wasmtime::component::bindgen!({
    path: "wit",
    world: "task-store-component",
    imports: { default: async },
    exports: { default: async },
});

pub(crate) use convert::{json_text, ttl_millis, GuestConfig};

/// The WIT package the host was built against; components must match it.
pub(crate) const WIT_PACKAGE: &str = "pmcp:tasks@0.8.0";
