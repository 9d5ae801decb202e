//! The command line (contract §9), parsed by clap.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// AgentVista: API keys, scopes and monthly event quotas for agent observability.
#[derive(Debug, Parser)]
#[command(name = "agentvista", version, about)]
pub(crate) struct Cli {
    /// Configuration file (default: ./agentvista.toml when it exists).
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage dashboard users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage accounts.
    #[command(subcommand)]
    Accounts(AccountsCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// Create a user. The password comes from AGENTVISTA_PASSWORD, else from standard input.
    Create {
        /// The user's e-mail address (the login).
        #[arg(long)]
        email: String,
        /// Account to join (created if new); default: a new account named after the e-mail.
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key for the account of the user with this e-mail, and print it once.
    Create {
        /// E-mail of a user of the account.
        #[arg(long)]
        email: String,
        /// A name for the key, e.g. "production".
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: read, write, admin.
        #[arg(long, value_name = "SCOPES")]
        scopes: String,
        /// Print the API's create response as JSON instead of the bare key.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key of the account of the user with this e-mail.
    Revoke {
        /// E-mail of a user of the account.
        #[arg(long)]
        email: String,
        /// The key's prefix, av_ + 8 hex characters.
        #[arg(long)]
        prefix: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AccountsCommand {
    /// Move the account of the user with this e-mail to a plan from the configuration.
    SetPlan {
        /// E-mail of a user of the account.
        #[arg(long)]
        email: String,
        /// Plan name, e.g. free or pro.
        #[arg(long)]
        plan: String,
    },
}
