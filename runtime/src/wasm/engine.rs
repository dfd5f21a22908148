//! The node's one wasmtime [`Engine`], made on first use (a node with no wasm app never
//! reserves the pooling allocator's address space), its epoch ticker, and the compiled
//! components: shared in memory by content (a thousand apps with the same component hold its
//! code once) and cached on disk, so a restart does not recompile.
#![allow(
    unsafe_code,
    reason = "loading a precompiled component is unsafe in wasmtime; each use is documented below"
)]

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of the CPU check and of a busy guest
/// yielding to its neighbours on the front door's threads.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(2);

/// The largest component file an app may point `main` at.
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// How the node runs WebAssembly.
#[derive(Clone, Debug)]
pub struct WasmSettings {
    /// Where compiled components are cached (none: compile on every start).
    pub cache_dir: Option<PathBuf>,
    /// Wasm instances that may run at once on the node (the pooling allocator's size); a
    /// request past it waits for none and answers `503 overloaded`.
    pub instances: u32,
    /// The largest linear memory any app may have (the node's `memory_mb` ceiling).
    pub max_memory_bytes: usize,
}

impl Default for WasmSettings {
    fn default() -> Self {
        Self {
            cache_dir: None,
            instances: 1000,
            max_memory_bytes: 1 << 30,
        }
    }
}

/// The node's wasm engine and compiled components.
pub struct WasmEngine {
    settings: WasmSettings,
    engine: OnceLock<Engine>,
    compiled: Mutex<HashMap<[u8; 32], Weak<Component>>>,
}

/// Why a component could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The file could not be read, or is too large.
    #[error("{path}: {message}")]
    Read {
        /// The component file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The file is not a component wasmtime can compile.
    #[error("{path}: not a WebAssembly component edge can run: {message}")]
    Invalid {
        /// The component file.
        path: PathBuf,
        /// wasmtime's reason.
        message: String,
    },
}

impl WasmEngine {
    /// An engine with `settings`, made when first needed.
    pub fn new(settings: WasmSettings) -> Arc<Self> {
        Arc::new(Self {
            settings,
            engine: OnceLock::new(),
            compiled: Mutex::new(HashMap::new()),
        })
    }

    /// The wasmtime engine: async, epoch interruption, the pooling allocator sized from the
    /// settings (or on-demand allocation if the host cannot reserve the pool).
    pub fn engine(&self) -> &Engine {
        self.engine.get_or_init(|| {
            let engine = make_engine(&self.settings, true).unwrap_or_else(|e| {
                tracing::warn!(
                    "the wasm pooling allocator is unavailable ({e:#}); instances are allocated on demand"
                );
                make_engine(&self.settings, false).expect("the on-demand wasm engine is valid")
            });
            start_ticker(&engine);
            engine
        })
    }

    /// The compiled component at `path`: shared with every app whose file has the same
    /// content, else read from the disk cache, else compiled (and cached). Blocking: call it
    /// off the request path.
    pub fn component(&self, path: &Path) -> Result<Arc<Component>, CompileError> {
        let read_err = |message: String| CompileError::Read {
            path: path.to_path_buf(),
            message,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_COMPONENT_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| read_err(format!("cannot read the component: {e}")))?;
        if bytes.len() as u64 > MAX_COMPONENT_BYTES {
            return Err(read_err(format!(
                "the component is larger than the {MAX_COMPONENT_BYTES} bytes edge loads"
            )));
        }
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let shared = |compiled: &HashMap<[u8; 32], Weak<Component>>| {
            compiled.get(&digest).and_then(Weak::upgrade)
        };
        if let Some(component) = shared(&self.compiled()) {
            return Ok(component);
        }
        // Compiled without holding the map: one app's large component never holds up the
        // others' loads (two apps with the same new file may both compile it, once).
        let component = Arc::new(self.load_or_compile(path, &bytes, &digest)?);
        let mut compiled = self.compiled();
        if let Some(first) = shared(&compiled) {
            return Ok(first);
        }
        compiled.retain(|_, c| c.strong_count() > 0);
        compiled.insert(digest, Arc::downgrade(&component));
        Ok(component)
    }

    fn compiled(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Weak<Component>>> {
        self.compiled.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn load_or_compile(
        &self,
        path: &Path,
        bytes: &[u8],
        digest: &[u8; 32],
    ) -> Result<Component, CompileError> {
        let engine = self.engine();
        let cached = self.settings.cache_dir.as_ref().map(|dir| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            dir.join("wasm")
                .join(format!("{hex}-{:016x}.cwasm", h.finish()))
        });
        if let Some(file) = &cached
            && file.exists()
        {
            // SAFETY: the file is one this node wrote with `Engine::precompile_component`
            // (atomically, under a name that holds the source's hash and the engine's
            // compatibility hash) into the operator's cache directory; wasmtime checks the
            // engine settings again as it loads it.
            match unsafe { Component::deserialize_file(engine, file) } {
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!(
                    "ignoring the compiled cache {}: {e}; compiling {}",
                    file.display(),
                    path.display()
                ),
            }
        }
        let invalid = |e: wasmtime::Error| CompileError::Invalid {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        };
        let started = std::time::Instant::now();
        let Some(file) = cached else {
            return Component::new(engine, bytes).map_err(invalid);
        };
        let artifact = engine.precompile_component(bytes).map_err(invalid)?;
        tracing::debug!(component = %path.display(), elapsed = ?started.elapsed(), "compiled");
        if let Err(e) = crate::isolate::snapshot::write_atomic(&file, &artifact) {
            tracing::debug!("could not cache {}: {e}", file.display());
        }
        // SAFETY: `artifact` was just produced by `precompile_component` on this engine.
        unsafe { Component::deserialize(engine, &artifact) }.map_err(invalid)
    }
}

fn make_engine(settings: &WasmSettings, pooling: bool) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    if pooling {
        let n = settings.instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(4))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .total_stacks(n)
            .max_memory_size(settings.max_memory_bytes);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] for as long as the engine lives.
fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("edge-wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the wasm epoch ticker: {e}; wasm CPU limits rely on it");
    }
}
