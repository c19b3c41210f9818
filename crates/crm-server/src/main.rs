//! `crm-server`: serve the CRM API, or run operator commands.

use clap::{Parser, Subcommand, ValueEnum};
use crm_server::{Settings, StartError};

#[derive(Parser)]
#[command(name = "crm-server", version, about = "CRM API server")]
struct Cli {
    #[command(subcommand)]
    command: Command,

    #[command(flatten)]
    settings: Settings,

    /// Log line format.
    #[arg(long, env = "CRM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then serve until SIGTERM or SIGINT.
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Manage the OAuth 2.0 clients that may call the API.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client; prints its id and secret (shown only this once) as JSON.
    Create {
        /// A name for the client, such as the service that uses it.
        #[arg(long)]
        name: String,
        /// Space-separated scopes it may be granted: read, write, crm:read, crm:write.
        #[arg(long, default_value = "crm:read crm:write")]
        scope: String,
    },
    /// List clients as JSON, one object per line.
    List,
    /// Delete a client and revoke all of its tokens.
    Delete {
        /// The client's id.
        client_id: String,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: escape codes in a log file
    // or a collector are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(cli: Cli) -> Result<(), StartError> {
    cli.settings.validate()?;
    match cli.command {
        Command::Migrate => {
            let applied = crm_server::Backend::migrate(&cli.settings)?;
            tracing::info!(count = applied.len(), migrations = ?applied, "migrations applied");
            Ok(())
        }
        Command::Client { command } => {
            let settings = cli.settings;
            actix_web::rt::System::new().block_on(client_command(&settings, command))
        }
        Command::Serve => {
            let settings = cli.settings;
            actix_web::rt::System::new().block_on(async move {
                let running = crm_server::start(&settings)?;
                tracing::info!(addr = %running.addr, database = %settings.redacted_database_url(), "serving");
                let addr = running.addr.to_string();
                running
                    .serve_until_signal()
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?;
                tracing::info!("stopped");
                Ok(())
            })
        }
    }
}

async fn client_command(settings: &Settings, command: ClientCommand) -> Result<(), StartError> {
    crm_server::Backend::migrate(settings)?;
    let auth = crm_server::Backend::open(settings)?.services(settings).auth;
    let failed = |e: crm_domain::Error| StartError::Config(e.to_string());
    match command {
        ClientCommand::Create { name, scope } => {
            let created = auth.create_client(&name, &scope).await.map_err(failed)?;
            let out = serde_json::json!({
                "client_id": created.client.id,
                "client_secret": created.secret.expose(),
                "name": created.client.name,
                "scope": created.client.scopes.to_string(),
            });
            println!("{out}");
        }
        ClientCommand::List => {
            for client in auth.list_clients().await.map_err(failed)? {
                let created_at = client
                    .created_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                let out = serde_json::json!({
                    "client_id": client.id,
                    "name": client.name,
                    "scope": client.scopes.to_string(),
                    "created_at": created_at,
                });
                println!("{out}");
            }
        }
        ClientCommand::Delete { client_id } => {
            auth.delete_client(&client_id).await.map_err(|e| match e {
                crm_domain::Error::NotFound => {
                    StartError::Config(format!("no client with id {client_id:?}"))
                }
                other => failed(other),
            })?;
            if settings.is_postgres() {
                // Give every running server the time to hear of it before
                // the operator goes on.
                std::thread::sleep(crm_postgres::revocations::PROPAGATION);
            }
            tracing::info!(client_id, "client deleted; its tokens are revoked");
        }
    }
    Ok(())
}

/// glibc gives each thread that allocates concurrently an arena of its own,
/// up to eight per core, and returns little of them to the system: under
/// load the server's resident memory grew to 66 MB answering large segments,
/// against 38 MB with two arenas at the same rate (docs/benchmarks.md). Two
/// arenas, unless `MALLOC_ARENA_MAX` says otherwise (glibc reads it itself).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn bound_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only adjusts allocator tuning; called before any
        // other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_malloc_arenas() {}

fn main() {
    bound_malloc_arenas();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    if let Err(error) = run(cli) {
        tracing::error!(%error, "crm-server failed");
        eprintln!("crm-server: {error}");
        std::process::exit(1);
    }
}
