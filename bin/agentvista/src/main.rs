//! The `agentvista` binary: configuration, CLI and wiring. Logic lives in the crates.

mod cli;
mod commands;
mod database;
mod metrics;
mod server;
mod settings;
mod teams;

use std::io::IsTerminal;
use std::process::ExitCode;

use agentvista_http::error_chain as error_line;
use agentvista_store::Store;
use tracing_subscriber::EnvFilter;

use crate::cli::{
    AccountsCommand, Cli, Command, InvitationsCommand, KeysCommand, MembersCommand, UsersCommand,
};
use crate::settings::{LogFormat, Settings};

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = match Cli::from_args() {
        Ok(cli) => cli,
        Err(status) => return status,
    };
    let command = cli.command.unwrap_or(Command::Serve);
    // Read before logging starts: the settings say how to log. Their errors name the key.
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("agentvista: {err}");
            return ExitCode::FAILURE;
        }
    };
    // The server logs requests; the admin commands only say what went wrong.
    let default_level = if matches!(command, Command::Serve) {
        "info"
    } else {
        "warn"
    };
    start_logging(settings.log.format, default_level);

    match run(&settings, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("agentvista: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines go to standard error, as text or as one JSON object per line (`log.format`),
/// filtered by `RUST_LOG` when set. In JSON, an event's fields are top-level keys and the
/// span it happened in (a request's, with its `request_id`) is under `span`.
fn start_logging(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

async fn run(settings: &Settings, command: Command) -> Result<(), String> {
    // Only `serve` and `migrate` create a database, and bring it up to date; every other
    // command opens the one the server uses, or says where it looked.
    let creates = matches!(command, Command::Serve | Command::Migrate);
    let url = &settings.database.url;
    let url = if creates {
        url.clone()
    } else {
        database::existing(url)?
    };
    let options = settings.store_options();
    let store = Store::connect_with(&url, options).await.map_err(|e| {
        let why = database::explain(&url, &e, options.busy_timeout);
        format!("database.url: {why}")
    })?;
    if creates {
        store
            .migrate()
            .await
            .map_err(|e| format!("migrations failed: {}", error_line(&e)))?;
    } else {
        let pending = store
            .pending_migrations()
            .await
            .map_err(|e| format!("database.url: {}", error_line(&e)))?;
        if pending > 0 {
            return Err(format!(
                "the database at {} is {pending} migration(s) behind this version: run \
                 `agentvista migrate` (or start the server) first",
                database::describe(&url)
            ));
        }
    }
    let done = match command {
        Command::Serve => return server::serve(store, settings).await,
        Command::Migrate => {
            println!("migrations applied");
            Ok(())
        }
        Command::Users(UsersCommand::Create {
            email,
            account,
            role,
        }) => commands::create_user(&store, settings, &email, account.as_ref(), role).await,
        Command::Users(UsersCommand::List { json }) => commands::list_users(&store, json).await,
        Command::Users(UsersCommand::SetPassword { email }) => {
            commands::set_password(&store, &email).await
        }
        Command::Keys(KeysCommand::List { email, json }) => {
            commands::list_keys(&store, &email, json).await
        }
        Command::Keys(KeysCommand::Create {
            email,
            name,
            scopes,
            rate_limit,
            burst,
            expires,
            json,
        }) => {
            let limits = (rate_limit, burst);
            let expires = expires.map(|at| at.to_utc());
            commands::create_key(&store, &email, &name, scopes, limits, expires, json).await
        }
        Command::Keys(KeysCommand::Revoke { email, prefix }) => {
            commands::revoke_key(&store, &email, &prefix).await
        }
        Command::Keys(KeysCommand::Roll {
            email,
            prefix,
            grace_seconds,
            json,
        }) => commands::roll_key(&store, &email, &prefix, grace_seconds, json).await,
        Command::Accounts(AccountsCommand::SetPlan { email, plan }) => {
            commands::set_plan(&store, settings, &email, &plan).await
        }
        Command::Accounts(AccountsCommand::Delete { account, confirm }) => {
            teams::delete_account(&store, &account, &confirm).await
        }
        Command::Members(MembersCommand::List { account, json }) => {
            teams::list(&store, &account, json).await
        }
        Command::Members(MembersCommand::SetRole {
            account,
            email,
            role,
        }) => teams::change(&store, &account, &email, Some(role)).await,
        Command::Members(MembersCommand::Remove { account, email }) => {
            teams::change(&store, &account, &email, None).await
        }
        Command::Invitations(InvitationsCommand::Create {
            account,
            email,
            role,
        }) => teams::invite(&store, settings, &account, &email, role).await,
        Command::Invitations(InvitationsCommand::List { account, json }) => {
            teams::invitations(&store, &account, json).await
        }
        Command::Invitations(InvitationsCommand::Revoke { account, id }) => {
            teams::revoke_invitation(&store, &account, id).await
        }
    };
    done.map_err(|e| error_line(&e))
}
