//! The bindings of the `task-store-component` world, generated from
//! `wit/`: the one place the rest of the component reaches them from
//! (their `export!` included).

wit_bindgen::generate!({
    path: "../wit",
    world: "task-store-component",
    default_bindings_module: "crate::component::bindings",
});
