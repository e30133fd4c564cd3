//! What is valid but will fail at run time unless the box changes first:
//! shown by `nonstopd check`, not refused.

use super::error::ConfigError;
use super::schema::Config;

impl Config {
    /// What is valid but will fail at run time unless the box changes
    /// first: a recording or HLS directory that cannot be created now (it
    /// may live on a disk that is mounted later, so it is no error).
    pub fn warnings(&self) -> Vec<ConfigError> {
        let mut out = Vec::new();
        for (c, ch) in self.channels.iter().enumerate() {
            for (o, output) in ch.outputs.iter().enumerate() {
                let dir = match crate::uri::output_kind(output.uri.get_ref()) {
                    Ok(crate::uri::OutputKind::File { path, .. }) => std::path::Path::new(&path)
                        .parent()
                        .map(std::path::Path::to_path_buf),
                    Ok(crate::uri::OutputKind::Hls { dir, .. }) => Some(dir.into()),
                    _ => None,
                };
                if let Some(why) = dir.as_deref().and_then(unwritable) {
                    out.push(self.error_at(
                        output.uri.span(),
                        format!("channel[{c}].output[{o}].uri"),
                        format!("warning: {why}; the output will fail and retry until it can be written"),
                    ));
                }
            }
        }
        out
    }
}

/// Why `dir` cannot be created or written now, if so. The nearest
/// existing ancestor is tried for real (a scratch directory made and
/// removed): permissions alone say nothing for root, nor for /proc.
fn unwritable(dir: &std::path::Path) -> Option<String> {
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(m) if !m.is_dir() => return Some(format!("{} is not a directory", at.display())),
            Ok(_) => break,
            Err(_) => at = at.parent()?,
        }
    }
    let scratch = at.join(format!(".nonstopd-check-{}", std::process::id()));
    match std::fs::create_dir(&scratch) {
        Ok(()) => {
            let _ = std::fs::remove_dir(&scratch);
            None
        }
        Err(e) if at == dir => Some(format!("{} is not writable ({e})", dir.display())),
        Err(e) => Some(format!(
            "{} cannot be created: nothing can be made in {} ({e})",
            dir.display(),
            at.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::fixtures::GOOD;
    use crate::config::Config;

    #[test]
    fn an_output_directory_that_cannot_be_made_is_a_warning() {
        let text = GOOD.replace(
            "rtmp://live.example.com/app/streamkey123",
            "file:///proc/nope/rec.ts",
        )
            + "\n[[channel.output]]\nid = \"ok\"\nuri = \"file:///tmp/nonstop-check-ok/rec.ts\"\n";
        let c = Config::parse("ch.toml", &text).unwrap();
        let w: Vec<String> = c.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("channel[0].output[0].uri: warning: /proc/nope cannot be created"),
            "{w:?}"
        );
        assert!(
            !std::path::Path::new("/tmp/nonstop-check-ok").exists(),
            "check creates nothing"
        );
    }
}
