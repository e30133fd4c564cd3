//! Reading a config: TOML syntax, then the types (serde_path_to_error
//! names the key path, toml's spans the line and column), then the
//! checks of validate.rs.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, Errors};
use super::schema::Config;

/// Where drop-ins of a config file go: `conf.d/` beside it (for the
/// default, `/etc/nonstop/conf.d/`).
pub fn drop_in_dir(path: &Path) -> PathBuf {
    path.parent()
        .map_or_else(|| PathBuf::from("conf.d"), |d| d.join("conf.d"))
}

/// The drop-ins of `path`: the `*.toml` files of its `conf.d/`, in name
/// order (none when the folder does not exist).
pub fn drop_ins(path: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let dir = drop_in_dir(path);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(unreadable(&dir, "cannot read the drop-in folder", &e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            // Editors' and dpkg's leftovers (.foo.toml.swp, x.toml.dpkg-old) do not count.
            name.ends_with(".toml") && !name.starts_with('.') && p.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

fn unreadable(path: &Path, what: &str, e: &std::io::Error) -> ConfigError {
    ConfigError {
        file: path.display().to_string(),
        line: 0,
        column: 0,
        path: String::new(),
        message: format!("{what}: {e}"),
    }
}

impl Config {
    /// Reads and validates a config file with its drop-ins
    /// ([`drop_in_dir`]), merged in name order after it.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let mut files = Vec::new();
        let mut errors = Vec::new();
        let main = std::iter::once(Ok(path.to_path_buf()));
        let extra = match drop_ins(path) {
            Ok(list) => list,
            Err(e) => {
                errors.push(e);
                Vec::new()
            }
        };
        for p in main.chain(extra.into_iter().map(Ok::<_, ()>)).flatten() {
            let what = if p == path {
                "cannot read the config"
            } else {
                "cannot read the drop-in"
            };
            match std::fs::read_to_string(&p) {
                Ok(text) => files.push((p.display().to_string(), text)),
                Err(e) => errors.push(unreadable(&p, what, &e)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Config::parse_files(&files)
    }

    /// The `[[channel]]` tables as written (all files joined), by id.
    pub fn channel_tables(&self) -> Vec<(String, toml::Value)> {
        let doc: toml::Table = toml::from_str(&self.source.1).unwrap_or_default();
        doc.get("channel")
            .and_then(|c| c.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|t| Some((t.get("id")?.as_str()?.to_owned(), t.clone())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The files it was read from: the main one, then its drop-ins.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.source.0.iter().map(|(f, _)| f.as_str())
    }

    /// Parses and validates `text`, read from `file`.
    pub fn parse(file: &str, text: &str) -> Result<Config, Vec<ConfigError>> {
        Config::parse_files(&[(file.to_owned(), text.to_owned())])
    }

    /// Parses and validates files (name, text) as one config: their
    /// tables joined in order. Every error names the file that holds it.
    pub fn parse_files(files: &[(String, String)]) -> Result<Config, Vec<ConfigError>> {
        let mut text = String::new();
        let mut parts = Vec::new();
        let mut early = Vec::new();
        for (n, (file, t)) in files.iter().enumerate() {
            // Each file's syntax on its own, so a mistake is placed in it
            // (and an unclosed string cannot run into the next file).
            let own = [(file.clone(), 0)];
            let mut errors = Errors {
                parts: &own,
                text: t,
                list: Vec::new(),
            };
            if let Err(e) = toml::Deserializer::parse(t.as_str()) {
                errors.push(e.span().unwrap_or(0..0), "(syntax)", e.message().trim());
            } else if let Some(at) = first_bare_key(t).filter(|_| n > 0) {
                errors.push(
                    at..at,
                    "(top)",
                    "a drop-in begins with a table ([[channel]], [[alert]] or [fleet]): \
                     keys before it would belong to the last table of the file before",
                );
            }
            early.extend(errors.list);
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            parts.push((file.clone(), text.len()));
            text.push_str(t);
        }
        if !early.is_empty() {
            return Err(early);
        }
        let text = text.as_str();
        let mut errors = Errors {
            parts: &parts,
            text,
            list: Vec::new(),
        };
        let de = match toml::Deserializer::parse(text) {
            Ok(de) => de,
            Err(e) => {
                errors.push(e.span().unwrap_or(0..0), "(syntax)", e.message().trim());
                return Err(errors.list);
            }
        };
        let config = match serde_path_to_error::deserialize::<_, Config>(de) {
            Ok(c) => c,
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                // "": an empty key at the top ("" = 1, found by fuzz/).
                let path = if path == "." || path.is_empty() {
                    "(top)".to_owned()
                } else {
                    path
                };
                let mut message = inner.message().trim().to_owned();
                if message.starts_with("unknown field `audio_bitrate`") {
                    message.push_str(
                        " (the AAC bitrate is now `bitrate` in the channel's `audio` table)",
                    );
                }
                errors.push(inner.span().unwrap_or(0..0), path, message);
                return Err(errors.list);
            }
        };
        config.validate(&mut errors);
        if errors.list.is_empty() {
            let mut config = config;
            config.source = (parts.clone(), text.to_owned());
            Ok(config)
        } else {
            Err(errors.list)
        }
    }
}

/// Where the first key outside any table is (byte), if before the first
/// table header.
fn first_bare_key(text: &str) -> Option<usize> {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if !(t.is_empty() || t.starts_with('#')) {
            return (!t.starts_with('[')).then_some(at + line.len() - t.len());
        }
        at += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::config::fixtures::{errors, GOOD};

    #[test]
    fn unknown_keys_name_the_place_and_what_is_expected() {
        let text = GOOD.replace("timeout = \"750ms\"", "timeuot = \"750ms\"");
        assert_eq!(
            errors(&text),
            vec![
                "ch.toml:5:1: channel[0].timeuot: unknown field `timeuot`, expected one of `id`, \
                  `video`, `audio`, `captions`, `pass_scte35`, `timeout`, `return_after`, `clean_gap`, `flap_window`, \
                  `max_return_after`, `startup_grace`, `auto_return`, `loss_repeat`, `watchdog`, \
                  `srt`, `backoff`, `input`, `encoder`, `output`, `fleet`"
            ]
        );
    }

    #[test]
    fn an_empty_key_at_the_top_has_a_place() {
        assert_eq!(
            errors("\"\" = \"=\""),
            vec![
                "ch.toml:1:1: (top): unknown field ``, expected one of `channel`, `alert`, `fleet`"
            ]
        );
    }

    fn drop_in(file: &str, text: &str) -> (String, String) {
        (file.to_owned(), text.to_owned())
    }

    #[test]
    fn drop_ins_join_in_order_and_errors_name_the_file_that_holds_the_key() {
        let more =
            "[[channel]]\nid = \"sport\"\n[[channel.input]]\nid = \"a\"\nuri = \"test://smpte\"\n";
        let c = super::Config::parse_files(&[
            drop_in("main.toml", GOOD),
            drop_in("conf.d/10-sport.toml", more),
        ])
        .unwrap();
        let ids: Vec<&str> = c.channels.iter().map(|c| c.id.get_ref().as_str()).collect();
        assert_eq!(ids, ["news", "sport"]);
        assert_eq!(
            c.files().collect::<Vec<_>>(),
            ["main.toml", "conf.d/10-sport.toml"]
        );
        // A mistake in the drop-in: its file, its own line.
        let bad = more.replace("test://smpte", "bogus://x");
        let e: Vec<String> = super::Config::parse_files(&[
            drop_in("main.toml", GOOD),
            drop_in("conf.d/10-sport.toml", &bad),
        ])
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("conf.d/10-sport.toml:5:7: channel[1].input[0].uri: "),
            "{e:?}"
        );
        // The same channel id in two files: placed at the second.
        let twice = more.replace("sport", "news");
        let e = super::Config::parse_files(&[
            drop_in("main.toml", GOOD),
            drop_in("conf.d/10-dup.toml", &twice),
        ])
        .unwrap_err();
        assert_eq!(e[0].file, "conf.d/10-dup.toml", "{e:?}");
        assert_eq!(e[0].line, 2, "{e:?}");
    }

    #[test]
    fn a_drop_in_is_checked_on_its_own_first() {
        let e: Vec<String> = super::Config::parse_files(&[
            drop_in("main.toml", GOOD),
            drop_in("conf.d/20-x.toml", "# top\n\ntimeout = \"1s\"\n"),
            drop_in("conf.d/30-y.toml", "[[channel]]\nid = \"unclosed\n"),
        ])
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("conf.d/20-x.toml:3:1: (top): a drop-in begins with a table"),
            "{e:?}"
        );
        assert!(e[1].starts_with("conf.d/30-y.toml:2:"), "{e:?}");
        // [fleet] in two files is TOML's "defined twice", at the second.
        let fleet = "[fleet]\nendpoints = [\"http://127.0.0.1:2379\"]\n";
        let e = super::Config::parse_files(&[
            drop_in("main.toml", &format!("{fleet}{GOOD}")),
            drop_in("conf.d/fleet.toml", fleet),
        ])
        .unwrap_err();
        assert_eq!(
            (e[0].file.as_str(), e[0].line),
            ("conf.d/fleet.toml", 1),
            "{e:?}"
        );
    }

    #[test]
    fn load_reads_the_toml_files_of_conf_d_in_name_order() {
        let dir = std::env::temp_dir().join(format!("nonstop-dropins-{}", std::process::id()));
        let d = dir.join("conf.d");
        std::fs::create_dir_all(&d).unwrap();
        let main = dir.join("nonstopd.toml");
        std::fs::write(&main, GOOD).unwrap();
        let ch = |id: &str| {
            format!("[[channel]]\nid = \"{id}\"\n[[channel.input]]\nid = \"a\"\nuri = \"test://smpte\"\n")
        };
        std::fs::write(d.join("20-b.toml"), ch("b")).unwrap();
        std::fs::write(d.join("10-a.toml"), ch("a")).unwrap();
        std::fs::write(d.join("30-c.toml.dpkg-old"), ch("old")).unwrap();
        std::fs::write(d.join(".40-d.toml"), ch("hidden")).unwrap();
        let c = super::Config::load(&main).unwrap();
        let ids: Vec<&str> = c.channels.iter().map(|c| c.id.get_ref().as_str()).collect();
        assert_eq!(ids, ["news", "a", "b"]);
        let tables: Vec<String> = c.channel_tables().into_iter().map(|(id, _)| id).collect();
        assert_eq!(tables, ["news", "a", "b"]);
        std::fs::remove_dir_all(&dir).unwrap();
        // Without conf.d: the file alone.
        assert!(
            super::drop_ins(&std::env::temp_dir().join("no-such-dir/x.toml"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn syntax_errors_point_at_the_spot() {
        let e = errors("[[channel]]\nid = = \"x\"\n");
        assert_eq!(
            e,
            vec!["ch.toml:2:6: (syntax): extra `=`, expected nothing"]
        );
    }
}
