//! The command line, as the contract fixes it, parsed by clap.

use std::path::PathBuf;
use std::process::ExitCode;

use agentvista_keys::{AccountName, Email, KeyName, KeyPrefix, Role, Scopes};
use clap::error::{ContextKind, ContextValue, ErrorKind};
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

impl Cli {
    /// This process's command line. Names and e-mails are parsed here, by the same types and
    /// rules as the API's. A value its type refuses is one line on standard error, like every
    /// other failure of a command; help, version and clap's other usage errors
    /// print as clap prints them.
    pub(crate) fn from_args() -> Result<Cli, ExitCode> {
        Cli::try_parse().map_err(|err| match refused_value(&err) {
            Some(line) => {
                eprintln!("agentvista: {line}");
                // clap's status for usage errors, as for a missing argument.
                ExitCode::from(2)
            }
            None => err.exit(),
        })
    }
}

/// `--name: needs 1 to 100 characters` for a value its type refused, `None` for any other
/// error. The value itself is left out: it may be long, or something pasted by mistake.
fn refused_value(err: &clap::Error) -> Option<String> {
    if err.kind() != ErrorKind::ValueValidation {
        return None;
    }
    let ContextValue::String(arg) = err.get(ContextKind::InvalidArg)? else {
        return None;
    };
    // clap names the argument as "--name <NAME>"; the flag is enough.
    let flag = arg.split_whitespace().next()?;
    let reason = std::error::Error::source(err)?;
    Some(format!("{flag}: {reason}"))
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
    /// Manage the members of an account and their roles (an account keeps an owner).
    #[command(subcommand)]
    Members(MembersCommand),
    /// Invite people to an account, list and revoke pending invitations.
    #[command(subcommand)]
    Invitations(InvitationsCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum InvitationsCommand {
    /// Invite an e-mail to an account with a role; prints the link once (it works for 7 days).
    Create {
        /// The account's name.
        #[arg(long, value_name = "NAME")]
        account: AccountName,
        /// Who to invite.
        #[arg(long)]
        email: Email,
        /// The role it grants: owner, admin, member or viewer.
        #[arg(long)]
        role: Role,
    },
    /// The account's pending invitations (never their links).
    List {
        /// The account's name.
        #[arg(long, value_name = "NAME")]
        account: AccountName,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a pending invitation: its link stops working.
    Revoke {
        /// The account's name.
        #[arg(long, value_name = "NAME")]
        account: AccountName,
        /// The invitation's id (from `invitations list`).
        #[arg(long)]
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum MembersCommand {
    /// List the members of an account: e-mail, role, joined.
    List {
        /// The account's name.
        #[arg(long, value_name = "NAME")]
        account: AccountName,
        /// Print JSON (the API's member objects) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Change a member's role.
    SetRole {
        /// The account's name.
        #[arg(long, value_name = "NAME")]
        account: AccountName,
        /// The member's e-mail address.
        #[arg(long)]
        email: Email,
        /// The new role: owner, admin, member or viewer.
        #[arg(long)]
        role: Role,
    },
    /// Remove a member: their sessions in the account end at once; their keys stay.
    Remove {
        /// The account's name.
        #[arg(long, value_name = "NAME")]
        account: AccountName,
        /// The member's e-mail address.
        #[arg(long)]
        email: Email,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// Create a user. The password comes from AGENTVISTA_PASSWORD, else from standard input.
    Create {
        /// The user's e-mail address (the login).
        #[arg(long)]
        email: Email,
        /// The account: without --role, a new one the person owns (default: named after the
        /// e-mail); with --role, an existing one the person joins.
        #[arg(long, value_name = "NAME")]
        account: Option<AccountName>,
        /// The person's role in an existing account: owner, admin, member or viewer. A person
        /// who exists already joins it without a new password.
        #[arg(long, requires = "account")]
        role: Option<Role>,
    },
    /// List every user: e-mail, accounts and roles, created.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password (from AGENTVISTA_PASSWORD, else standard input) and end every
    /// session of theirs: the way to reset a forgotten password.
    SetPassword {
        /// The user's e-mail address.
        #[arg(long)]
        email: Email,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key for the account of the user with this e-mail, and print it once.
    Create {
        /// E-mail of a user of the account.
        #[arg(long)]
        email: Email,
        /// A name for the key, e.g. "production" (1 to 100 characters).
        #[arg(long)]
        name: KeyName,
        /// Comma-separated scopes: read, write, admin.
        #[arg(long, value_name = "SCOPES")]
        scopes: Scopes,
        /// The key's own rate limit: requests a second on each server replica (1 to 1000000).
        #[arg(long, value_name = "PER_SECOND")]
        rate_limit: Option<u32>,
        /// With --rate-limit: requests allowed at once (default: the rate).
        #[arg(long, requires = "rate_limit")]
        burst: Option<u32>,
        /// When the key stops working, e.g. 2027-01-31T00:00:00Z (RFC 3339; default: never).
        #[arg(long, value_name = "RFC3339")]
        expires: Option<chrono::DateTime<chrono::FixedOffset>>,
        /// Print the API's create response as JSON instead of the bare key.
        #[arg(long)]
        json: bool,
    },
    /// List the keys of the account of the user with this e-mail, newest first (never a full
    /// key).
    List {
        /// E-mail of a user of the account.
        #[arg(long)]
        email: Email,
        /// Print JSON (the API's key objects) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key of the account of the user with this e-mail.
    Revoke {
        /// E-mail of a user of the account.
        #[arg(long)]
        email: Email,
        /// The key's prefix, av_ + 8 hex characters.
        #[arg(long)]
        prefix: KeyPrefix,
    },
    /// Roll a key: a new key with the same name, scopes and expiry (printed once), and the old
    /// one expiring after the grace (revoked with none).
    Roll {
        /// E-mail of a user of the account.
        #[arg(long)]
        email: Email,
        /// The old key's prefix, av_ + 8 hex characters.
        #[arg(long)]
        prefix: KeyPrefix,
        /// Seconds the old key keeps working: 0 (revoked at once) to 604800 (7 days).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=604_800))]
        grace_seconds: u64,
        /// Print the new key object and the key as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AccountsCommand {
    /// Move the account of the user with this e-mail to a plan from the configuration.
    SetPlan {
        /// E-mail of a user of the account.
        #[arg(long)]
        email: Email,
        /// Plan name, e.g. free or pro.
        #[arg(long)]
        plan: String,
    },
    /// Delete an account: every key revoked (exits once no running server accepts one), its
    /// sessions and memberships ended; its data is removed by the next retention sweep. The
    /// people in it keep their logins.
    Delete {
        /// The account's name.
        #[arg(long, value_name = "NAME")]
        account: AccountName,
        /// The account's name again, to confirm.
        #[arg(long, value_name = "NAME")]
        confirm: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("agentvista").chain(args.iter().copied()))
    }

    fn create_key(name: &str) -> Result<Cli, clap::Error> {
        parse(&[
            "keys",
            "create",
            "--email",
            "ada@example.com",
            "--name",
            name,
            "--scopes",
            "read",
        ])
    }

    fn key_name(cli: Cli) -> KeyName {
        match cli.command {
            Some(Command::Keys(KeysCommand::Create { name, .. })) => name,
            other => panic!("not keys create: {other:?}"),
        }
    }

    #[test]
    fn key_names_follow_the_apis_rule_of_1_to_100_characters() {
        let longest = "n".repeat(100);
        assert_eq!(key_name(create_key(&longest).unwrap()).as_str(), longest);
        assert_eq!(key_name(create_key("  ci ").unwrap()).as_str(), "ci");
        for bad in ["", "   ", &"n".repeat(101)] {
            let err = create_key(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{bad:?}");
            assert_eq!(
                refused_value(&err).as_deref(),
                Some("--name: needs 1 to 100 characters")
            );
        }
    }

    #[test]
    fn scopes_and_prefixes_are_parsed_by_their_types() {
        let cli = create_key("ci").unwrap();
        let Some(Command::Keys(KeysCommand::Create { scopes, .. })) = cli.command else {
            panic!("not keys create");
        };
        assert_eq!(scopes, "read".parse().unwrap());
        let refused = |args: &[&str]| refused_value(&parse(args).unwrap_err());
        let create = |scopes| {
            refused(&[
                "keys", "create", "--email", "a@b.c", "--name", "n", "--scopes", scopes,
            ])
        };
        let (bad_scope, none) = (create("read,root"), create(""));
        assert!(
            bad_scope
                .as_deref()
                .is_some_and(|l| l.starts_with("--scopes: ")),
            "{bad_scope:?}"
        );
        assert!(
            none.as_deref().is_some_and(|l| l.starts_with("--scopes: ")),
            "{none:?}"
        );
        let prefix = refused(&["keys", "revoke", "--email", "a@b.c", "--prefix", "av_XYZ"]);
        assert!(
            prefix
                .as_deref()
                .is_some_and(|l| l.starts_with("--prefix: ")),
            "{prefix:?}"
        );
        assert!(
            parse(&[
                "keys",
                "revoke",
                "--email",
                "a@b.c",
                "--prefix",
                "av_0123abcd"
            ])
            .is_ok()
        );
    }

    #[test]
    fn e_mails_and_account_names_are_parsed_by_their_types() {
        let cli = parse(&[
            "users",
            "create",
            "--email",
            " Ada@Example.COM ",
            "--account",
            " Acme ",
        ])
        .unwrap();
        let Some(Command::Users(UsersCommand::Create { email, account, .. })) = cli.command else {
            panic!("not users create");
        };
        assert_eq!(email.as_str(), "ada@example.com");
        assert_eq!(account.map(|a| a.to_string()).as_deref(), Some("Acme"));

        let err = parse(&["users", "create", "--email", "ada"]).unwrap_err();
        assert_eq!(
            refused_value(&err).as_deref(),
            Some("--email: not an e-mail address")
        );
        let long = "a".repeat(101);
        let err = parse(&["users", "create", "--email", "a@b.c", "--account", &long]).unwrap_err();
        assert_eq!(
            refused_value(&err).as_deref(),
            Some("--account: needs 1 to 100 characters")
        );
        for args in [
            ["keys", "revoke", "--email", "x", "--prefix", "av_00000000"],
            ["accounts", "set-plan", "--email", "x", "--plan", "pro"],
        ] {
            let err = parse(&args).unwrap_err();
            assert_eq!(
                refused_value(&err).as_deref(),
                Some("--email: not an e-mail address"),
                "{args:?}"
            );
        }
    }

    #[test]
    fn other_usage_errors_are_left_to_clap() {
        let missing = parse(&["keys", "create", "--email", "a@b.c"]).unwrap_err();
        assert_eq!(refused_value(&missing), None);
        let unknown = parse(&["keys", "frobnicate"]).unwrap_err();
        assert_eq!(refused_value(&unknown), None);
    }
}
