//! The rules that three parts of PlexiChat each apply, written once: the manifest's plugin
//! kinds, the HTTP methods a route may use, the permission vocabulary, the names and paths
//! core keeps for itself, and how a doc comment becomes a description.
//!
//! `plexichat-macros` validates manifests against these tables and generates core's enums and
//! permission traits from them; `plexichat` (the kernel) checks registrations against them at
//! start-up; `xtask` refuses a scaffold or describes a plugin crate by the same rules. Before
//! this crate each kept its own copy and tests compared the copies.
//!
//! Plain data and pure functions, no dependencies: it sits below everything that uses it.

/// One word of a closed vocabulary, as written and as the Rust enum variant core generates for
/// it (`#[plexichat_macros::__variants(TABLE)]`), with the variant's doc comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// As written in a manifest or an attribute, e.g. `micro_app`, `GET`.
    pub name: &'static str,
    /// The enum variant, e.g. `MicroApp`, `Get`.
    pub variant: &'static str,
    /// The variant's doc comment.
    pub doc: &'static str,
}

const fn variant(name: &'static str, variant: &'static str, doc: &'static str) -> Variant {
    Variant { name, variant, doc }
}

/// The sixteen plugin kinds of the seed's manifest (`type = ...`, core's `PluginType`), in
/// its order.
pub const PLUGIN_KINDS: [Variant; 16] = [
    variant("core", "Core", "Core system functionality."),
    variant("feature", "Feature", "Feature plugins (most common)."),
    variant("integration", "Integration", "Third-party integrations."),
    variant("micro_app", "MicroApp", "Self-contained applications."),
    variant("ai_node", "AiNode", "AI/ML functionality."),
    variant("security_node", "SecurityNode", "Security features."),
    variant("storage_node", "StorageNode", "Storage and backup."),
    variant("extension", "Extension", "Extensions to existing features."),
    variant("theme", "Theme", "UI themes and customization."),
    variant("auth_provider", "AuthProvider", "Authentication providers."),
    variant("notification", "Notification", "Notification systems."),
    variant("analytics", "Analytics", "Analytics and reporting."),
    variant("backup", "Backup", "Backup and recovery."),
    variant("monitoring", "Monitoring", "System monitoring."),
    variant("automation", "Automation", "Workflow automation."),
    variant("custom", "Custom", "Anything else."),
];

/// The HTTP methods `#[route]` accepts (core's `Method`).
pub const METHODS: [Variant; 8] = [
    variant("GET", "Get", "`GET`"),
    variant("POST", "Post", "`POST`"),
    variant("PUT", "Put", "`PUT`"),
    variant("PATCH", "Patch", "`PATCH`"),
    variant("DELETE", "Delete", "`DELETE`"),
    variant("HEAD", "Head", "`HEAD`"),
    variant("OPTIONS", "Options", "`OPTIONS`"),
    variant("TRACE", "Trace", "`TRACE`"),
];

/// The seed's plugin test categories (`#[plugin_test(category = ...)]`, core's
/// `TestCategory`), in the order listings show them.
pub const TEST_CATEGORIES: [Variant; 6] = [
    variant(
        "functionality",
        "Functionality",
        "Core feature validation (the default).",
    ),
    variant("performance", "Performance", "Speed and efficiency."),
    variant("security", "Security", "Permissions and access."),
    variant(
        "integration",
        "Integration",
        "Connectivity to other parts: routes, events, storage.",
    ),
    variant("analytics", "Analytics", "Data collection and processing."),
    variant("user_experience", "UserExperience", "Pages and workflows."),
];

/// One permission a plugin can declare in `permissions = [...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    /// The manifest string, e.g. `plugin:read`.
    pub name: &'static str,
    /// The marker trait core generates for it (`__private::perm::<marker>`), which
    /// `#[plugin]` implements for a plugin that declares it and which its services require.
    pub marker: &'static str,
    /// What it grants: shown by `plexichat plugins info`, the API and the plugin guide.
    pub grants: &'static str,
    /// The label of the compile error at a use of one of its services by a plugin that did
    /// not declare it, up to the permission's name: "`<needs>` `<name>`".
    pub needs: &'static str,
}

/// Every permission, in the order listings show them.
pub const PERMISSIONS: [Permission; 13] = [
    Permission {
        name: "plugin:read",
        marker: "ReadData",
        grants: "read the plugin's own key-value entries and files in its data folder",
        needs: "reading the plugin's stored data needs",
    },
    Permission {
        name: "plugin:write",
        marker: "WriteData",
        grants: "write and delete the plugin's own key-value entries and files in its data folder",
        needs: "changing the plugin's stored data needs",
    },
    Permission {
        name: "database",
        marker: "Database",
        grants: "run SQL on the server's database (its own tables, created by its migrations)",
        needs: "the SQL pool needs",
    },
    Permission {
        name: "events:publish",
        marker: "PublishEvents",
        grants: "publish events to other plugins",
        needs: "publishing events needs",
    },
    Permission {
        name: "http:client",
        marker: "HttpClient",
        grants: "make outbound HTTP requests through the server's client (rustls, timeouts)",
        needs: "outbound HTTP requests need",
    },
    Permission {
        name: "tests:run",
        marker: "RunTests",
        grants: "queue any plugin's tests on the test runner and watch their results",
        needs: "running plugin tests needs",
    },
    Permission {
        name: "admin:api",
        marker: "AdminApi",
        grants: "act as the server's admin in the plugin's own tests (`context.admin_app()`: requests carry the admin token), and vouch for other bearer tokens as admins' (`context.vouch_for_admins`)",
        needs: "calling the admin API from a plugin test, or vouching for admins, needs",
    },
    Permission {
        name: "plugins:read",
        marker: "ReadPlugins",
        grants: "read every compiled-in plugin's manifest, registrations and state (never change them)",
        needs: "reading other plugins' manifests and states needs",
    },
    Permission {
        name: "outbox:read",
        marker: "ReadOutbox",
        grants: "take the events every plugin writes to the outbox (those its manifest lists in `webhooks`), to deliver them",
        needs: "taking events from the outbox needs",
    },
    Permission {
        name: "ai",
        marker: "UseAi",
        grants: "ask the AI service for chat completions and its models (`context.ai()`), counted against the plugin's quota",
        needs: "the AI service needs",
    },
    Permission {
        name: "analytics",
        marker: "UseAnalytics",
        grants: "record analytics events and query the daily rollups of every plugin's (`context.analytics()`)",
        needs: "recording and querying analytics needs",
    },
    Permission {
        name: "services:provide",
        marker: "ProvideServices",
        grants: "provide a service core defines (AI, analytics) to every plugin that declares it (`context.provide_ai`, `context.provide_analytics`)",
        needs: "providing a core service needs",
    },
    Permission {
        name: UI_TRUSTED_PERMISSION,
        marker: "TrustedUi",
        grants: "serve the plugin's pages and HTML answers in the server's own origin, beside the shell and the admin session (without it they run sandboxed, in an origin of their own)",
        needs: "a page in the server's own origin needs",
    },
];

/// The permission whose pages share the server's origin: every other plugin's answers are
/// sandboxed into an opaque origin, so their scripts cannot reach the admin session.
pub const UI_TRUSTED_PERMISSION: &str = "ui:trusted";

/// The candidate `word` was most likely meant to be: the nearest by edit distance
/// (insertions, deletions, substitutions and swaps of neighbours each count one), if it is
/// near enough to be a typo (a third of the word's length, at least one). For "did you mean"
/// in the macros' and the configuration's errors.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// The optimal string alignment distance between `a` and `b`, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut table = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        table[i * width] = i;
    }
    for (j, cell) in table.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[(i - 1) * width + j] + 1)
                .min(table[i * width + j - 1] + 1)
                .min(table[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[(i - 2) * width + j - 2] + 1);
            }
            table[i * width + j] = best;
        }
    }
    table[a.len() * width + b.len()]
}

/// Every plugin crate's `build.rs` (`cargo xtask new-plugin` writes it; a tidy test holds the
/// plugins of this repository to it): `#[plugin]` reads the folders a manifest embeds while it
/// expands, and cargo would not rebuild the crate when a file is added to one of them.
pub const PLUGIN_BUILD_SCRIPT: &str = r#"//! Rebuilds this plugin when a file is added to, changed in or removed from a folder its
//! manifest embeds (`migrations`, `ui`, `docs`): `#[plugin]` reads those folders while the
//! crate compiles, and cargo watches only what it is told to.
fn main() {
    for folder in ["migrations", "ui", "docs"] {
        if std::path::Path::new(folder).is_dir() {
            println!("cargo::rerun-if-changed={folder}");
        }
    }
    println!("cargo::rerun-if-changed=build.rs");
}
"#;

/// The permission named `name` in a manifest, if there is one.
pub fn permission(name: &str) -> Option<&'static Permission> {
    PERMISSIONS
        .iter()
        .find(|permission| permission.name == name)
}

/// The permission that grants the SQL pool; a plugin with migrations needs it.
pub const DATABASE_PERMISSION: &str = "database";

/// The permissions whose services use the server's database (the SQL pool, and the
/// key-value store, which lives in it): while the database is unreachable, the routes of a
/// plugin holding one answer 503 at once.
pub const STORAGE_PERMISSIONS: [&str; 3] = [DATABASE_PERMISSION, "plugin:read", "plugin:write"];

/// Plugin names core's own routes use below `/api/v1/`: a plugin named so would mount its
/// routes on core's.
pub const RESERVED_PLUGIN_NAMES: [&str; 5] =
    ["admin", "plugins", "system", "performance", "backup"];

/// The paths core serves, each with everything below it; no plugin path may fall on or under
/// one of them, so a plugin can never answer in core's place.
pub const CORE_PATHS: [&str; 11] = [
    "/health",
    "/ready",
    "/openapi.json",
    "/metrics",
    "/api/v1/plugins",
    "/api/v1/admin",
    // The seed's system areas: what runs, how it performs, backups.
    "/api/v1/system",
    "/api/v1/performance",
    "/api/v1/backup",
    // Plugins' UI pages and static files.
    "/plugins",
    // The stylesheet and script every page shares.
    "/ui",
];

/// The core path that `path` falls on or under, if any.
pub fn reserved_path(path: &str) -> Option<&'static str> {
    let path = path.trim_end_matches('/');
    CORE_PATHS.into_iter().find(|core| {
        path == *core
            || path
                .strip_prefix(core)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Where a plugin's routes are mounted unless it sets `prefix`: below this, its name with
/// `-` for `_`.
pub const PREFIX_ROOT: &str = "/api/v1/";

/// The prefix a plugin named `name` gets by default: `/api/v1/<name with - for _>`. Core
/// computes the same in const context, from [`PREFIX_ROOT`], because the default name is the
/// crate name, which only rustc knows.
pub fn default_prefix(name: &str) -> String {
    format!("{PREFIX_ROOT}{}", name.replace('_', "-"))
}

/// A description from doc-comment lines: the first paragraph (the lines up to the first blank
/// one), each trimmed, joined with spaces; `None` when there is none. `#[plugin]` takes its
/// default description so, and `xtask list-plugins` reads a crate's the same way.
pub fn first_paragraph<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let paragraph: Vec<&str> = lines
        .into_iter()
        .map(str::trim)
        .take_while(|line| !line.is_empty())
        .collect();
    (!paragraph.is_empty()).then(|| paragraph.join(" "))
}

/// The type name the scaffold gives a plugin named `name`, and the one `#[plugin]` suggests
/// when a dependency names a crate instead of its plugin type: `hello_world` → `HelloWorld`.
pub fn camel_case(name: &str) -> String {
    name.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_on_or_under_a_core_path_are_reserved() {
        let check = |path: &str, expected: Option<&str>| {
            assert_eq!(reserved_path(path), expected, "{path}")
        };
        check("/health", Some("/health"));
        check("/health/", Some("/health"));
        check("/api/v1/plugins/x", Some("/api/v1/plugins"));
        check("/plugins/shell/static/a.css", Some("/plugins"));
        // A shared prefix of characters is not a path below.
        check("/healthz", None);
        check("/api/v1/pluginsx", None);
        check("/api/v1/awesome", None);
        check(&default_prefix("admin"), Some("/api/v1/admin"));
        check(&default_prefix("my_awesome_plugin"), None);
    }

    #[test]
    fn type_names_are_camel_case() {
        assert_eq!(camel_case("hello_world"), "HelloWorld");
        assert_eq!(camel_case("a1_b"), "A1B");
    }

    #[test]
    fn the_default_prefix_uses_dashes() {
        assert_eq!(
            default_prefix("my_awesome_plugin"),
            "/api/v1/my-awesome-plugin"
        );
    }

    #[test]
    fn a_description_is_the_first_paragraph() {
        assert_eq!(
            first_paragraph([" Audits", "things. ", "", "More."]),
            Some("Audits things.".to_string())
        );
        assert_eq!(first_paragraph(["", "Late."]), None);
        assert_eq!(first_paragraph([]), None);
    }

    #[test]
    fn names_and_markers_are_unique_and_every_name_is_category_colon_word_or_one_word() {
        let mut names: Vec<&str> = PERMISSIONS.iter().map(|p| p.name).collect();
        let mut markers: Vec<&str> = PERMISSIONS.iter().map(|p| p.marker).collect();
        names.sort_unstable();
        markers.sort_unstable();
        names.dedup();
        markers.dedup();
        assert_eq!(
            (names.len(), markers.len()),
            (PERMISSIONS.len(), PERMISSIONS.len())
        );
        for permission in PERMISSIONS {
            assert!(
                permission
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b':'),
                "{permission:?}"
            );
            assert_eq!(super::permission(permission.name), Some(&permission));
        }
        assert!(permission("admin").is_none());
    }

    #[test]
    fn a_typo_finds_what_was_meant_and_a_stranger_finds_nothing() {
        let keys = ["permissions", "prefix", "author", "type"];
        assert_eq!(closest("permisions", keys), Some("permissions"));
        assert_eq!(closest("autohr", keys), Some("author"));
        assert_eq!(closest("typ", keys), Some("type"));
        assert_eq!(closest("colour", keys), None);
        assert_eq!(
            closest("plugin:wirte", PERMISSIONS.iter().map(|p| p.name)),
            Some("plugin:write")
        );
    }
}
