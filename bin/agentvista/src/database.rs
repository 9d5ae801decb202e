//! Where the database is, as the operator needs to read it: the server names it when it
//! starts, and the admin commands open only a database that exists (only `serve` and
//! `migrate` create one), saying where they looked when there is none.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentvista_store::{ConnectFailure, StoreError};

/// The SQLite file `url` names, as an absolute path (relative paths are the current
/// directory's); `None` for PostgreSQL and in-memory databases.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        return None;
    }
    Some(std::path::absolute(path).unwrap_or_else(|_| Path::new(path).to_path_buf()))
}

/// `url` as the log may show it: a SQLite file as its absolute path, a PostgreSQL URL with its
/// password replaced by `***`.
///
/// ```text
/// sqlite://agentvista.db?mode=rwc        → /srv/agentvista/agentvista.db (SQLite)
/// postgres://av:secret@db:5432/agentvista → postgres://av:***@db:5432/agentvista
/// ```
pub(crate) fn describe(url: &str) -> String {
    if let Some(path) = sqlite_file(url) {
        return format!("{} (SQLite)", path.display());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The credentials end at the last '@' before the host's path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let credentials = &rest[..at];
            let user = credentials.split(':').next().unwrap_or(credentials);
            let masked = if credentials.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

/// `url` for a command that must not create a database: for a SQLite file, the same URL
/// opening the file read-write without creating it (whatever `mode` it gave), or, when there
/// is no file, why not and both ways out.
///
/// # Errors
/// The sentence to print when the file does not exist.
pub(crate) fn existing(url: &str) -> Result<String, String> {
    let Some(path) = sqlite_file(url) else {
        return Ok(url.to_owned());
    };
    if !path.exists() {
        return Err(format!(
            "no database at {} — run from the server's directory, or set database.url / --config",
            path.display()
        ));
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("mode="))
        .collect();
    params.push("mode=rw");
    Ok(format!("{base}?{}", params.join("&")))
}

/// Why `url` could not be opened, in one line that names the file or the server: what the
/// operator reads after `database.url: `.
pub(crate) fn explain(url: &str, err: &StoreError, waited: Duration) -> String {
    if let Some(path) = sqlite_file(url) {
        return explain_sqlite(url, &path, err);
    }
    let server = PostgresUrl::parse(url);
    let failure = match err.connect_failure() {
        // The pool's timeout hides the cause: a refused connection is quick to tell.
        Some(ConnectFailure::TimedOut | ConnectFailure::Unreachable) if server.refuses() => {
            Some(ConnectFailure::Refused)
        }
        other => other,
    };
    let at = &server.host_port;
    match failure {
        Some(ConnectFailure::Refused) => {
            format!(
                "PostgreSQL at {at} refused the connection: is it running, and listening there?"
            )
        }
        Some(ConnectFailure::LoginRefused) => format!(
            "PostgreSQL at {at} refused the login of {}: a wrong password, or no such role",
            server.user
        ),
        Some(ConnectFailure::NoSuchDatabase) => format!(
            "PostgreSQL at {at} has no database {}: create it (createdb {}), or fix database.url",
            server.database, server.database
        ),
        Some(ConnectFailure::TimedOut | ConnectFailure::Unreachable) => format!(
            "no answer from PostgreSQL at {at} within {} s",
            waited.as_secs().max(1)
        ),
        Some(ConnectFailure::CannotOpen) | None => agentvista_http::error_chain(err),
    }
}

/// Why the SQLite file `path` could not be opened.
fn explain_sqlite(url: &str, path: &Path, err: &StoreError) -> String {
    let directory = path.parent().unwrap_or(Path::new("/"));
    if !directory.is_dir() {
        return format!(
            "the directory {} does not exist: create it, or point database.url elsewhere",
            directory.display()
        );
    }
    if !path.exists() && !url.contains("mode=rwc") {
        return format!(
            "no database at {}, and the URL does not let SQLite create one: add ?mode=rwc to \
             database.url",
            path.display()
        );
    }
    if err.connect_failure() == Some(ConnectFailure::CannotOpen) {
        let read_only = std::fs::metadata(path).is_ok_and(|m| m.permissions().readonly());
        return if read_only {
            format!("{} is read-only: the server writes to it", path.display())
        } else {
            format!(
                "SQLite cannot open {} for writing (the file and its directory must be \
                 writable by this user)",
                path.display()
            )
        };
    }
    agentvista_http::error_chain(err)
}

/// What a PostgreSQL URL names, for messages: never its password.
struct PostgresUrl {
    host_port: String,
    user: String,
    database: String,
}

impl PostgresUrl {
    fn parse(url: &str) -> PostgresUrl {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let rest = rest.split('?').next().unwrap_or(rest);
        let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((credentials, host)) => (credentials, host),
            None => ("", authority),
        };
        let user = credentials.split(':').next().unwrap_or("");
        let host_port = if host.contains(':') && !host.ends_with(']') {
            host.to_owned()
        } else {
            format!("{host}:5432")
        };
        PostgresUrl {
            host_port,
            user: if user.is_empty() {
                "(default)".to_owned()
            } else {
                user.to_owned()
            },
            database: if database.is_empty() {
                "(default)".to_owned()
            } else {
                database.to_owned()
            },
        }
    }

    /// Whether a TCP connection to the server is refused now (nothing listens there).
    fn refuses(&self) -> bool {
        use std::net::ToSocketAddrs;
        let Ok(mut addresses) = self.host_port.to_socket_addrs() else {
            return false;
        };
        addresses.next().is_some_and(|address| {
            std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1))
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_file_is_named_by_its_absolute_path_and_a_password_never() {
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            describe("sqlite://agentvista.db?mode=rwc"),
            format!("{} (SQLite)", here.join("agentvista.db").display())
        );
        assert_eq!(describe("sqlite:///srv/av.db"), "/srv/av.db (SQLite)");
        assert_eq!(describe("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(
            describe("postgres://av:s3cr@t@db.internal:5432/agentvista"),
            "postgres://av:***@db.internal:5432/agentvista"
        );
        assert_eq!(
            describe("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(
            describe("postgres://db/agentvista"),
            "postgres://db/agentvista"
        );
    }

    #[test]
    fn a_postgres_url_names_its_server_user_and_database_but_no_password() {
        let url =
            PostgresUrl::parse("postgres://av:s3cret@db.internal:6432/agentvista?sslmode=require");
        assert_eq!(url.host_port, "db.internal:6432");
        assert_eq!(url.user, "av");
        assert_eq!(url.database, "agentvista");
        let url = PostgresUrl::parse("postgres://db.internal/agentvista");
        assert_eq!(url.host_port, "db.internal:5432");
        let login = StoreError::Unavailable(sea_orm::DbErr::Custom("x".into()));
        let message = explain(
            "postgres://av:s3cret@db.internal:6432/agentvista",
            &login,
            Duration::from_secs(5),
        );
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn commands_open_an_existing_file_without_creating_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agentvista.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let missing = existing(&url).unwrap_err();
        assert_eq!(
            missing,
            format!(
                "no database at {} — run from the server's directory, or set database.url / \
                 --config",
                file.display()
            )
        );
        std::fs::write(&file, b"").unwrap();
        assert_eq!(
            existing(&url).unwrap(),
            format!("sqlite://{}?mode=rw", file.display())
        );
        let plain = format!("sqlite://{}", file.display());
        assert_eq!(existing(&plain).unwrap(), format!("{plain}?mode=rw"));
        let postgres = "postgres://db/agentvista";
        assert_eq!(existing(postgres).unwrap(), postgres);
    }
}
