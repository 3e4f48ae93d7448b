//! `--page <plugin>/<page>`, shared by `plexichat gui` and `plexichat-gui`: the path a plugin's
//! UI page is served at, or the test dashboard without one.

/// The path of `page` (`<plugin>/<page>`), or of the test dashboard; the error says what to
/// write.
pub(crate) fn page_path(page: Option<&str>) -> Result<String, String> {
    let Some(page) = page else {
        return Ok("/plugins/test_manager/dashboard/".to_string());
    };
    let valid = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    match page.split_once('/') {
        Some((plugin, name)) if valid(plugin) && valid(name) => {
            Ok(format!("/plugins/{plugin}/{name}/"))
        }
        _ => Err(format!(
            "--page {page}: write `<plugin>/<page>`, e.g. `test_manager/dashboard` (see `plexichat plugins info`)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_plugin_slash_page() {
        assert_eq!(page_path(None).unwrap(), "/plugins/test_manager/dashboard/");
        assert_eq!(
            page_path(Some("my_awesome_plugin/dashboard")).unwrap(),
            "/plugins/my_awesome_plugin/dashboard/"
        );
        for bad in ["dashboard", "a/", "/b", "a/b/c", "A/b", "a/../b"] {
            assert!(page_path(Some(bad)).is_err(), "{bad}");
        }
    }
}
