//! Checks that a component was built for the contract this host implements.

use wasmtime::component::Component;
use wasmtime::Engine;

use crate::bindings::WIT_PACKAGE;
use crate::error::BuildError;

/// Refuses a component built against another version of the WIT package.
pub(super) fn check_package_version(
    engine: &Engine,
    component: &Component,
) -> Result<(), BuildError> {
    let ty = component.component_type();
    let names: Vec<String> = ty
        .imports(engine)
        .chain(ty.exports(engine))
        .map(|(name, _)| name.to_owned())
        .collect();
    let ours = WIT_PACKAGE.split('@').next().unwrap_or(WIT_PACKAGE);
    let other = names.iter().find_map(|name| {
        let (package, version) = name.split_once('@')?;
        let package = package.rsplit_once('/').map_or(package, |(p, _)| p);
        (package == ours && !WIT_PACKAGE.ends_with(&format!("@{version}")))
            .then(|| version.to_owned())
    });
    match other {
        Some(version) => Err(BuildError::IncompatibleComponent(format!(
            "it was built for {ours}@{version}, but this host implements {WIT_PACKAGE}"
        ))),
        None => Ok(()),
    }
}
