//! Where the database is, as the operator needs to read it: the server names it when it
//! starts, and the admin commands open only a database that exists (only `serve` and
//! `migrate` create one), saying where they looked when there is none.

use std::path::{Path, PathBuf};

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
