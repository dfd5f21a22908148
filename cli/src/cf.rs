//! `request.cf` settings of a node (`--colo`, `--cf NAME=VALUE`, `--cf-geo-header`).

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use edge_runtime::worker::CfConfig;

/// What `request.cf` says of where requests come from.
#[derive(Args, Clone, Debug)]
pub struct CfArgs {
    /// `request.cf.colo`: this node's name (Workers gives its data centre's IATA code).
    #[arg(long, default_value = "EDGE", value_name = "NAME")]
    colo: String,
    /// A fixed geo value of `request.cf` for every request (repeat for more): `country`,
    /// `city`, `continent`, `region`, `regionCode`, `postalCode`, `metroCode`, `latitude`,
    /// `longitude`, `timezone`, `asn` (a number), `asOrganization`, `isEUCountry`.
    #[arg(long = "cf", value_name = "NAME=VALUE")]
    geo: Vec<String>,
    /// A request header that a front proxy you trust sets to a JSON object of geo values
    /// (the fields of --cf): they override the fixed ones for that request, and the header is
    /// removed before the app sees the request. Only behind a proxy that always sets (or
    /// strips) it: a client reaching the node directly could send its own.
    #[arg(long, value_name = "HEADER")]
    cf_geo_header: Option<String>,
}

impl CfArgs {
    /// The node's `request.cf` settings.
    pub fn config(&self) -> anyhow::Result<Arc<CfConfig>> {
        let mut config = CfConfig::default();
        config.colo = self.colo.clone();
        for setting in &self.geo {
            let (name, value) = setting
                .split_once('=')
                .with_context(|| format!("--cf {setting:?}: expected NAME=VALUE"))?;
            config
                .set_geo(name.trim(), value)
                .with_context(|| format!("--cf {setting:?}"))?;
        }
        if let Some(header) = &self.cf_geo_header {
            config
                .set_geo_header(header)
                .with_context(|| format!("--cf-geo-header {header:?}"))?;
        }
        Ok(Arc::new(config))
    }
}
