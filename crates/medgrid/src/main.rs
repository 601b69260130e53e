//! `medgrid`: the information platform of a tight-knit urban medical group.

mod config;
mod demo;
mod mpi_match;

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use medgrid_store::{Actor, ConnectOptions, Store};
use medgrid_web::actions::{scope_of, validate_user, UserInput};
use medgrid_web::{auth, AppState};

use config::Config;

#[derive(Parser)]
#[command(
    name = "medgrid",
    version,
    about = "紧密型城市医疗集团信息平台 — the information platform of a tight-knit urban medical group"
)]
struct Cli {
    /// Configuration file (TOML); also MEDGRID_CONFIG.
    #[arg(long, global = true, env = "MEDGRID_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Default)]
struct DbArgs {
    /// sqlite://PATH or postgres://…; also MEDGRID_DATABASE_URL.
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Loads the demo city into an empty database, prints the demo accounts, then serves.
    Demo {
        /// Synthetic residents to generate.
        #[arg(long, default_value_t = 20_000)]
        residents: u64,
        /// Seed of the synthetic city (same seed, same city).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        addr: Option<String>,
        /// Password of the demo accounts (else MEDGRID_ADMIN_PASSWORD, else random).
        #[arg(long)]
        admin_password: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Serves the web UI, /api/v1 and /fhir.
    Serve {
        #[arg(long)]
        addr: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Applies the database migrations and exits.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Accounts and tokens.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Loads data files.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Shows configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The patient index engine on files.
    #[command(subcommand)]
    Mpi(MpiCommand),
    /// Writes the synthetic city as files, without a server.
    Generate {
        #[arg(long, default_value_t = 20_000)]
        residents: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Folder to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// File format, one file per table (see docs/synthetic-city.md).
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// City layout to populate (default: the bundled Jinhua layout).
        #[arg(long)]
        layout: Option<PathBuf>,
        /// The day the population is described on (ages, pregnancies), YYYY-MM-DD.
        #[arg(long, default_value = "2025-01-01")]
        as_of: String,
        /// Months of activity from --as-of (24 gives year-on-year comparisons).
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=60))]
        months: u32,
        /// Also write member units' patient records with realistic errors and the truth
        /// (mpi_records, mpi_truth), for measuring the patient index.
        #[arg(long)]
        mpi_records: bool,
    },
}

#[derive(Subcommand)]
enum MpiCommand {
    /// Batch record linkage: one input is deduplicated, two inputs are linked (A to B).
    /// Writes `left_id,right_id,probability` for every pair at or above the threshold.
    Match(mpi_match::MatchArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Csv,
    Parquet,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Creates a user bound to an organisation scope.
    CreateUser {
        #[arg(long)]
        username: String,
        /// system_admin, city_regulator, group_manager, member_manager, family_doctor,
        /// specialist, referral_coordinator, insurance_officer or auditor.
        #[arg(long)]
        role: String,
        /// Organisation id as shown by /fhir/Organization (city-1, group-3, unit-7) or a USCC.
        #[arg(long)]
        org: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Reads the password from standard input (else the account uses tokens only).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Prints a new bearer token for scripted API access.
    CreateToken {
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Loads a city layout file (CSV; see docs/layout-format.md). All rows or none.
    Layout {
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Loads the insurance bureau's claims of one group (CSV with the columns of the
    /// generated claims.csv; see docs/insurance.md). Every bad line is reported and then
    /// nothing is written; claims already kept unchanged are skipped.
    Claims {
        file: PathBuf,
        /// The group's code (as in the layout).
        #[arg(long)]
        group: String,
        /// Only check the file and print the report.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Prints every configuration key with its default value.
    PrintDefault,
    /// Prints the effective configuration, secrets redacted.
    Show,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, causes joined, as scripts expect.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref(), std::env::vars())?;
    match cli.command {
        Command::Config(ConfigCommand::PrintDefault) => {
            print!("{}", toml::to_string(&Config::default())?);
            Ok(())
        }
        Command::Config(ConfigCommand::Show) => {
            print!("{}", config.redacted_toml());
            Ok(())
        }
        Command::Mpi(MpiCommand::Match(args)) => {
            // The engine's threads do the work; the runtime only waits.
            tokio::task::spawn_blocking(move || mpi_match::run(&args)).await?
        }
        Command::Migrate { db } => {
            apply_db(&mut config, &db);
            init_logging(&config);
            let store = open(&config).await?;
            let applied = store.migrate().await?;
            println!(
                "migrations applied: {}",
                if applied.is_empty() {
                    "none (up to date)".into()
                } else {
                    format!("{applied:?}")
                }
            );
            Ok(())
        }
        Command::Serve { addr, db } => {
            apply_db(&mut config, &db);
            if let Some(a) = addr {
                config.addr = a;
            }
            init_logging(&config);
            let store = open(&config).await?;
            store.migrate().await?;
            serve(&config, store).await
        }
        Command::Demo {
            residents,
            seed,
            addr,
            admin_password,
            db,
        } => {
            apply_db(&mut config, &db);
            if let Some(a) = addr {
                config.addr = a;
            }
            if let Some(p) = admin_password {
                config.demo.admin_password = p;
            }
            init_logging(&config);
            let store = open(&config).await?;
            store.migrate().await?;
            demo::load_if_empty(&store, &config, residents, seed).await?;
            serve(&config, store).await
        }
        Command::Admin(AdminCommand::CreateUser {
            username,
            role,
            org,
            display_name,
            password_stdin,
            db,
        }) => {
            apply_db(&mut config, &db);
            let store = open(&config).await?;
            store.migrate().await?;
            let password = if password_stdin {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("cannot read the password from standard input")?;
                Some(s.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let input = UserInput {
                username,
                display_name: display_name.unwrap_or_default(),
                role,
                org,
                password,
            };
            let user = create_user_offline(&store, &config, &input).await?;
            println!(
                "created user {} (id {}, {}, {:?} scope)",
                user.username,
                user.id,
                user.role.as_str(),
                user.scope.kind
            );
            Ok(())
        }
        Command::Admin(AdminCommand::CreateToken { username, name, db }) => {
            apply_db(&mut config, &db);
            let store = open(&config).await?;
            store.migrate().await?;
            let user = store
                .user_by_username(&username)
                .await
                .map_err(|_| anyhow::anyhow!("no user '{username}'"))?;
            let (secret, prefix, hash) = auth::new_token();
            store
                .create_token(&Actor::system("cli"), &user, &name, &prefix, &hash)
                .await?;
            println!("{secret}");
            Ok(())
        }
        Command::Generate {
            residents,
            seed,
            out,
            format,
            layout,
            as_of,
            months,
            mpi_records,
        } => {
            let bytes = match &layout {
                Some(path) => std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                None => demo::JINHUA_LAYOUT.to_vec(),
            };
            let layout = medgrid_domain::org::layout::parse_layout(&bytes)
                .map_err(|inv| anyhow::anyhow!("not a valid layout: {inv}"))?;
            let as_of = chrono::NaiveDate::parse_from_str(&as_of, "%Y-%m-%d")
                .context("--as-of must be a date YYYY-MM-DD")?;
            let mut params = medgrid_sim::Params::new(seed, residents, as_of);
            params.months = months;
            params.mpi_records = mpi_records;
            let format = match format {
                Format::Csv => medgrid_sim::Format::Csv,
                Format::Parquet => medgrid_sim::Format::Parquet,
            };
            let started = std::time::Instant::now();
            let manifest = medgrid_sim::write_files(&layout, &params, &out, format, |p| {
                eprint!(
                    "\rresidents {}/{} ({}%)",
                    p.done,
                    p.total,
                    p.done * 100 / p.total.max(1)
                );
            })?;
            eprintln!();
            for (table, rows) in &manifest.tables {
                println!(
                    "{}: {rows} rows",
                    out.join(format!("{table}.{}", format.extension()))
                        .display()
                );
            }
            println!(
                "seed {seed}, as of {as_of}, {months} months, {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Import(ImportCommand::Layout { file, db }) => {
            apply_db(&mut config, &db);
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let layout = medgrid_domain::org::layout::parse_layout(&bytes).map_err(|inv| {
                anyhow::anyhow!("{} is not a valid layout: {inv}", file.display())
            })?;
            let store = open(&config).await?;
            store.migrate().await?;
            let summary = store.import_layout(&Actor::system("cli"), &layout).await?;
            println!(
                "imported city-{}: {} grids, {} groups, {} units",
                summary.city_id, summary.grids, summary.groups, summary.units
            );
            for w in &summary.warnings {
                println!("warning: {w}");
            }
            Ok(())
        }
        Command::Import(ImportCommand::Claims {
            file,
            group,
            check,
            db,
        }) => {
            apply_db(&mut config, &db);
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let store = open(&config).await?;
            store.migrate().await?;
            let found = store
                .group_by_code(&group)
                .await
                .with_context(|| format!("no group with code {group}"))?;
            let report = store
                .import_claims(
                    &Actor::system("cli"),
                    found.path(),
                    &found.code,
                    &bytes,
                    check,
                )
                .await
                .map_err(|e| match e {
                    medgrid_store::StoreError::Invalid(inv) => {
                        let report: Vec<String> = inv.0.iter().map(ToString::to_string).collect();
                        anyhow::anyhow!(
                            "{} was not imported; nothing was written:\n{}",
                            file.display(),
                            report.join("\n")
                        )
                    }
                    other => other.into(),
                })?;
            println!(
                "{} lines: {} {}, {} already kept unchanged; {} yuan, insurance paid {} yuan",
                report.lines,
                report.imported,
                if report.written {
                    "imported"
                } else {
                    "would be imported"
                },
                report.unchanged,
                medgrid_domain::insurance::yuan(report.total),
                medgrid_domain::insurance::yuan(report.insurance_paid)
            );
            Ok(())
        }
    }
}

fn apply_db(config: &mut Config, db: &DbArgs) {
    if let Some(url) = &db.database_url {
        config.database_url = url.clone();
    }
}

async fn open(config: &Config) -> anyhow::Result<Store> {
    let options = ConnectOptions {
        max_connections: config.max_connections,
        ..ConnectOptions::default()
    };
    Store::connect(&config.database_url, &options)
        .await
        .with_context(|| {
            format!(
                "cannot open database {}",
                medgrid_store::redact_url(&config.database_url)
            )
        })
}

/// Creates a user from the command line: the operator holds the database, so no access
/// check applies, but every field is validated as in the UI.
pub(crate) async fn create_user_offline(
    store: &Store,
    config: &Config,
    input: &UserInput,
) -> anyhow::Result<medgrid_store::UserRecord> {
    let state =
        AppState::new(store.clone(), config.web.clone()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let fields = validate_user(input).map_err(|inv| anyhow::anyhow!("{inv}"))?;
    let (_, scope) = scope_of(&state, "org", &input.org).await.map_err(|e| {
        let (_, en) = e.detail();
        anyhow::anyhow!("{en}")
    })?;
    let (username, display_name, role, password) = fields;
    let password_hash = match password {
        Some(p) => Some(auth::hash_password(&p).map_err(|e| anyhow::anyhow!("{e:?}"))?),
        None => None,
    };
    let new = medgrid_store::NewUser {
        username,
        display_name,
        role,
        scope,
        password_hash,
    };
    match store.create_user(&Actor::system("cli"), &new).await {
        Ok(u) => Ok(u),
        Err(medgrid_store::StoreError::Conflict(f)) => bail!("{}: {}", f.field, f.message_en),
        Err(e) => Err(e.into()),
    }
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    tracing::info!(config = %config.redacted_toml().replace('\n', "; "), "configuration");
}

async fn serve(config: &Config, store: Store) -> anyhow::Result<()> {
    let state =
        AppState::new(store.clone(), config.web.clone()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    // Referral timers and the notification channel run beside the server.
    let jobs = medgrid_web::jobs::spawn(state.clone(), Box::new(medgrid_web::jobs::LoggingChannel));
    // The indicator cube follows new facts within CUBE_REFRESH.
    let cube = medgrid_web::jobs::spawn_cube(state.clone());
    let app = medgrid_web::router(state);
    let listener = tokio::net::TcpListener::bind(&config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let local = listener.local_addr()?;
    println!("medgrid listening on http://{local}/");
    tracing::info!(%local, "listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("server failed")?;
    jobs.abort();
    cube.abort();
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM, letting requests in flight finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
