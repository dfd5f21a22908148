//! What an app's `compatibility_flags` and `compatibility_date` ask of Node.js compatibility,
//! decided as Cloudflare Workers decides it.

use super::AppConfig;

/// Which Node.js built-in modules an app can import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeModules {
    /// None (no `nodejs_compat`): an import of `node:*` is an error saying what to add.
    Off,
    /// Only `node:async_hooks` (the `nodejs_als` flag).
    AsyncHooks,
    /// Every module edge provides, as `node:<name>` only (`nodejs_compat` before 2024-09-23).
    Prefixed,
    /// Every module edge provides, as `node:<name>` and as the bare `<name>`
    /// (`nodejs_compat` from 2024-09-23, or `nodejs_compat_v2`).
    All,
    /// The app asks for Node.js modules but the node does not grant them (`edge serve
    /// --allow-nodejs-compat NAME`): an import of `node:*` is an error saying so.
    NotGranted,
    /// The app asks for Node.js modules and this is the QuickJS build, which does not run
    /// them (the engine facade's module linking fails on Deno's modules): an import of
    /// `node:*` is an error saying so.
    NeedsV8,
}

/// An app's Node.js compatibility.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeCompat {
    /// The modules it can import.
    pub modules: NodeModules,
    /// `Buffer`, `process` and `global` are globals (with the modules of [`NodeModules::All`]).
    pub globals: bool,
    /// `process.env` holds the app's vars as text (`nodejs_compat` from 2025-04-01, or
    /// `nodejs_compat_populate_process_env`); else it is empty.
    pub process_env: bool,
}

impl AppConfig {
    /// The app's Node.js compatibility, from its flags and date (and the node's grant).
    pub fn node_compat(&self) -> NodeCompat {
        let asked = self.asked_node_compat();
        let modules = match asked.modules {
            NodeModules::Off => return asked,
            _ if cfg!(feature = "quickjs") => NodeModules::NeedsV8,
            _ if self.nodejs_granted => return asked,
            _ => NodeModules::NotGranted,
        };
        NodeCompat {
            modules,
            globals: false,
            process_env: false,
        }
    }

    /// Whether the app's flags ask for any Node.js module.
    pub fn asks_for_nodejs_compat(&self) -> bool {
        self.asked_node_compat().modules != NodeModules::Off
    }

    /// What the flags and date ask for, whatever the node grants.
    fn asked_node_compat(&self) -> NodeCompat {
        node_compat(
            self.compatibility_date.as_deref().unwrap_or(""),
            &self.compatibility_flags,
        )
    }
}

fn node_compat(date: &str, flags: &[String]) -> NodeCompat {
    let has = |flag: &str| flags.iter().any(|f| f == flag);
    let compat = has("nodejs_compat") || has("nodejs_compat_v2");
    let v2 = has("nodejs_compat_v2")
        || (has("nodejs_compat") && date >= "2024-09-23" && !has("no_nodejs_compat_v2"));
    let modules = match (compat, v2) {
        (_, true) => NodeModules::All,
        (true, false) => NodeModules::Prefixed,
        (false, _) if has("nodejs_als") => NodeModules::AsyncHooks,
        (false, _) => NodeModules::Off,
    };
    let process_env = compat
        && (has("nodejs_compat_populate_process_env")
            || (date >= "2025-04-01" && !has("nodejs_compat_do_not_populate_process_env")));
    NodeCompat {
        modules,
        globals: v2,
        process_env,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(date: &str, flags: &[&str]) -> NodeCompat {
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        node_compat(date, &flags)
    }

    #[test]
    fn flags_and_dates_decide_as_on_workers() {
        assert_eq!(of("2025-06-01", &[]).modules, NodeModules::Off);
        assert_eq!(
            of("2024-01-01", &["nodejs_als"]).modules,
            NodeModules::AsyncHooks
        );
        let v1 = of("2024-09-22", &["nodejs_compat"]);
        assert_eq!(
            (v1.modules, v1.globals, v1.process_env),
            (NodeModules::Prefixed, false, false)
        );
        let v2 = of("2024-09-23", &["nodejs_compat"]);
        assert_eq!(
            (v2.modules, v2.globals, v2.process_env),
            (NodeModules::All, true, false)
        );
        assert!(of("2025-04-01", &["nodejs_compat"]).process_env);
        assert!(
            !of(
                "2025-04-01",
                &["nodejs_compat", "nodejs_compat_do_not_populate_process_env"]
            )
            .process_env
        );
        assert!(
            of(
                "2024-01-01",
                &["nodejs_compat", "nodejs_compat_populate_process_env"]
            )
            .process_env
        );
        assert_eq!(
            of("2024-01-01", &["nodejs_compat_v2"]).modules,
            NodeModules::All
        );
        assert_eq!(
            of("2025-01-01", &["nodejs_compat", "no_nodejs_compat_v2"]).modules,
            NodeModules::Prefixed
        );
    }
}
