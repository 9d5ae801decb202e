//! The `agentvista` binary: configuration, CLI and wiring. Logic lives in the crates.

mod cli;
mod commands;
mod server;
mod settings;

use std::io::IsTerminal;
use std::process::ExitCode;

use agentvista_http::error_chain as error_line;
use agentvista_store::Store;
use tracing_subscriber::EnvFilter;

use crate::cli::{AccountsCommand, Cli, Command, KeysCommand, UsersCommand};
use crate::settings::Settings;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = match Cli::from_args() {
        Ok(cli) => cli,
        Err(status) => return status,
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let serving = matches!(command, Command::Serve);
    // The server logs requests; the admin commands only say what went wrong.
    let default_level = if serving { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    match run(cli.config.as_deref(), command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("agentvista: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Option<&std::path::Path>, command: Command) -> Result<(), String> {
    let settings = Settings::load(config).map_err(|e| e.to_string())?;
    let store = Store::connect_with(&settings.database.url, settings.store_options())
        .await
        .map_err(|e| format!("database.url: {}", error_line(&e)))?;
    store
        .migrate()
        .await
        .map_err(|e| format!("migrations failed: {}", error_line(&e)))?;
    let done = match command {
        Command::Serve => return server::serve(store, &settings).await,
        Command::Migrate => {
            println!("migrations applied");
            Ok(())
        }
        Command::Users(UsersCommand::Create { email, account }) => {
            commands::create_user(&store, &settings, &email, account.as_ref()).await
        }
        Command::Keys(KeysCommand::Create {
            email,
            name,
            scopes,
            json,
        }) => commands::create_key(&store, &email, &name, scopes, json).await,
        Command::Keys(KeysCommand::Revoke { email, prefix }) => {
            commands::revoke_key(&store, &email, &prefix).await
        }
        Command::Accounts(AccountsCommand::SetPlan { email, plan }) => {
            commands::set_plan(&store, &settings, &email, &plan).await
        }
    };
    done.map_err(|e| error_line(&e))
}
