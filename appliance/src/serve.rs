//! Serving the review app: from `scribe serve`, or beside the pipeline in `scribe daemon`.

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use review_ui::web::{App, TlsFiles, WebConfig};
use store::LoginPolicy;

use crate::commands::Context;

/// A bound listener and the app to serve on it.
pub struct Prepared {
    listener: TcpListener,
    tls: Option<TlsFiles>,
    app: Arc<App>,
    pub url: String,
}

/// Binds the configured address and opens the store; every configuration mistake surfaces here,
/// before anything is served.
pub fn prepare(ctx: &Context, listen: Option<&str>) -> Result<Prepared> {
    let web = &ctx.config.web;
    let listen = listen.unwrap_or(&web.listen);
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("web.listen {listen:?} is not an address like 0.0.0.0:8443"))?;
    let tls = if web.tls {
        let (cert, key) = web.tls_files(&ctx.home);
        for f in [&cert, &key] {
            if !f.exists() {
                bail!(
                    "TLS file {} is missing; run `scribe init` to issue one, or set web.tls_cert and web.tls_key",
                    f.display()
                );
            }
        }
        Some(TlsFiles { cert, key })
    } else if addr.ip().is_loopback() {
        None
    } else {
        bail!(
            "web.tls = false is only allowed on a loopback address (PHI never crosses the LAN unencrypted); {addr} is not one"
        );
    };
    let mut store = ctx.open_store()?;
    store.login_policy = LoginPolicy {
        max_failures: web.lockout_failures.max(1),
        lockout_ms: web.lockout.as_millis() as i64,
        ..LoginPolicy::default()
    };
    let allow = ctx.config.network.allow_list()?;
    if !allow.permits_listening_on(addr.ip()) {
        bail!(
            "web.listen {addr} is outside network.allow ({}); the review app only listens on the clinic network",
            ctx.config.network.allow.join(", ")
        );
    }
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let url = format!("{}://{bound}", if tls.is_some() { "https" } else { "http" });
    let facts = vec![
        ("Version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("Home".to_string(), ctx.home.dir.display().to_string()),
        ("Model profile".to_string(), ctx.config.profile.clone()),
        ("Models".to_string(), model_names(ctx)),
        ("Review app".to_string(), url.clone()),
    ];
    let app = App::new(
        store,
        WebConfig {
            clinic: web.clinic.clone(),
            idle_timeout: web.idle_timeout,
            absolute_lifetime: web.session_lifetime,
            tls: tls.is_some(),
            appliance_facts: facts,
            upload_limits: ctx.config.capture.upload_limits(),
            concurrent_uploads: ctx.config.capture.concurrent_uploads.max(1),
            spool_dir: {
                let dir = ctx.home.dir.join("spool");
                std::fs::create_dir_all(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
                dir
            },
            compliance_report: Some({
                let (config, home, manifest) = (ctx.config.clone(), ctx.home.clone(), ctx.manifest.clone());
                review_ui::web::ComplianceReport(std::sync::Arc::new(move |store, by| {
                    let facts = crate::compliance::trail_facts(store, by).map_err(|e| format!("{e:#}"))?;
                    let (config, home, manifest) = (config.clone(), home.clone(), manifest.clone());
                    Ok(Box::new(move || {
                        crate::compliance::markdown(&config, &home, &manifest, facts)
                            .map(|md| crate::compliance::html(&md))
                            .map_err(|e| format!("{e:#}"))
                    }))
                }))
            }),
            export: review_ui::web::ExportTargets {
                folder: (!ctx.config.export.folder.is_empty()).then(|| ctx.config.export.folder.clone().into()),
                ehr_endpoints: ctx.config.export.ehr_endpoints()?,
                ehr_link: review_ui::export::EhrLink {
                    allow,
                    roots: ehr_roots(&ctx.config.export.ehr_ca_file)?,
                },
            },
        },
    );
    Ok(Prepared {
        listener,
        tls,
        app,
        url,
    })
}

impl Prepared {
    /// Serves until the process ends.
    pub fn run(self) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime
            .block_on(review_ui::web::serve(self.listener, self.tls, self.app))
            .context("the review app stopped")
    }
}

pub fn serve(ctx: &Context, listen: Option<&str>) -> Result<ExitCode> {
    let prepared = prepare(ctx, listen)?;
    tracing::info!(url = %prepared.url, "review app listening");
    // Tests and scripts read the address (the port may have been 0) from this line.
    println!("review app listening on {}", prepared.url);
    use std::io::Write;
    std::io::stdout().flush()?;
    prepared.run()?;
    Ok(ExitCode::SUCCESS)
}

fn model_names(ctx: &Context) -> String {
    match ctx.manifest.profile(&ctx.config.profile) {
        Ok((asr, llm)) => format!(
            "{} (sha256 {}…), {} (sha256 {}…); re-hashed before every load",
            asr.name,
            &asr.sha256[..12.min(asr.sha256.len())],
            llm.name,
            &llm.sha256[..12.min(llm.sha256.len())]
        ),
        Err(e) => format!("unknown profile: {e}"),
    }
}

/// The clinic CA bundle for EHR endpoints, if one is configured.
fn ehr_roots(path: &str) -> Result<Option<review_ui::export::CaBundle>> {
    if path.is_empty() {
        return Ok(None);
    }
    let pem = std::fs::read(path).with_context(|| format!("export.ehr_ca_file: cannot read {path}"))?;
    let certs = review_ui::export::read_ca_bundle(&pem)
        .map_err(|e| anyhow::anyhow!("export.ehr_ca_file {path} is not a PEM CA bundle: {e}"))?;
    Ok(Some(certs))
}
