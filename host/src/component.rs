//! Where the task component comes from: the one embedded at build time, or
//! a `.wasm` the user supplies (plugin-style).

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::BuildError;
use crate::sandbox::Runtime;
use crate::EngineTuning;

/// The default component: `guest/` built for `wasm32-wasip2` by the
/// reproducible build (`./tests/build-component.sh`), shipped with this
/// crate so that building the host needs no wasm toolchain. CI rebuilds it
/// and checks the bytes match.
pub static DEFAULT_COMPONENT: &[u8] = include_bytes!("../component/pmcp_tasks.wasm");

/// Source of the component a host runs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum ComponentSource {
    /// The component embedded in this crate.
    #[default]
    Embedded,
    /// A component (binary or WAT text) in memory.
    Bytes(Vec<u8>),
    /// A component file on disk.
    File(PathBuf),
}

impl ComponentSource {
    /// The compiled runtime: shared for the embedded component with the
    /// default tuning, compiled anew otherwise.
    pub(crate) fn runtime(&self, tuning: EngineTuning) -> Result<Arc<Runtime>, BuildError> {
        let bytes: Cow<'_, [u8]> = match self {
            ComponentSource::Embedded if tuning == EngineTuning::default() => {
                return Runtime::embedded()
            }
            ComponentSource::Embedded => Cow::Borrowed(DEFAULT_COMPONENT),
            ComponentSource::Bytes(bytes) => Cow::Borrowed(bytes),
            ComponentSource::File(path) => {
                std::fs::read(path)
                    .map(Cow::Owned)
                    .map_err(|source| BuildError::ReadComponent {
                        path: path.clone(),
                        source,
                    })?
            }
        };
        Runtime::new(&bytes, tuning).map(Arc::new)
    }
}
