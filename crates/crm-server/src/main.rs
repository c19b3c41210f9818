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
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
        Command::Serve => {
            let settings = cli.settings;
            actix_web::rt::System::new().block_on(async move {
                let running = crm_server::start(&settings)?;
                tracing::info!(addr = %running.addr, database = %settings.redacted_database_url(), "serving");
                // actix-web stops gracefully on SIGTERM and SIGINT, letting
                // in-flight requests finish within the shutdown timeout.
                running.server.await.map_err(|source| StartError::Bind {
                    addr: running.addr.to_string(),
                    source,
                })?;
                tracing::info!("stopped");
                Ok(())
            })
        }
    }
}

fn main() {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    if let Err(error) = run(cli) {
        tracing::error!(%error, "crm-server failed");
        eprintln!("crm-server: {error}");
        std::process::exit(1);
    }
}
