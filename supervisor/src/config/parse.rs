//! Reading a config: TOML syntax, then the types (serde_path_to_error
//! names the key path, toml's spans the line and column), then the
//! checks of validate.rs.

use std::path::Path;

use super::error::{ConfigError, Errors};
use super::schema::Config;

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                file: file.clone(),
                line: 0,
                column: 0,
                path: String::new(),
                message: format!("cannot read the config: {e}"),
            }]
        })?;
        Config::parse(&file, &text)
    }

    /// Parses and validates `text`, read from `file`.
    pub fn parse(file: &str, text: &str) -> Result<Config, Vec<ConfigError>> {
        let mut errors = Errors {
            file,
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
            config.source = (file.to_owned(), text.to_owned());
            Ok(config)
        } else {
            Err(errors.list)
        }
    }
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
                  `video`, `audio`, `timeout`, `return_after`, `clean_gap`, `flap_window`, \
                  `max_return_after`, `startup_grace`, `watchdog`, `backoff`, `input`, `encoder`, \
                  `output`, `fleet`"
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

    #[test]
    fn syntax_errors_point_at_the_spot() {
        let e = errors("[[channel]]\nid = = \"x\"\n");
        assert_eq!(
            e,
            vec!["ch.toml:2:6: (syntax): extra `=`, expected nothing"]
        );
    }
}
