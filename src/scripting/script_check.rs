//! What `validate` (and every reload) finds in a compiled script before it
//! runs: calls to functions that exist neither in the sandbox, nor in the
//! inbox API, nor in the script itself (a typo would otherwise fail every
//! event the rule sees), and reads of `settings.<key>` that the config
//! does not set (they would read `()` and act on it).

use std::collections::HashSet;
use std::path::Path;

use rhai::{ASTNode, Engine, Expr, Position, Stmt, AST};

use crate::domain::diagnostic::Diagnostic;

/// Functions the engine itself provides, outside any package.
const BUILT_IN: [&str; 9] = [
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_def_var",
    "is_def_fn",
    "is_shared",
];

/// The names a script may call.
pub struct Known {
    functions: HashSet<String>,
    settings: Vec<String>,
    webhooks: Vec<String>,
}

impl Known {
    /// What `engine` provides (its packages), the inbox API, and the keys
    /// of `[settings]`.
    pub fn new(engine: &Engine, settings: &toml::Table, webhooks: &[String]) -> Known {
        let mut functions: HashSet<String> = engine
            .gen_fn_signatures(true)
            .iter()
            .filter_map(|signature| signature.split('(').next())
            .map(|name| name.trim().to_string())
            .collect();
        functions.extend(crate::scripting::manual::function_names().map(str::to_string));
        functions.extend(BUILT_IN.iter().map(|f| f.to_string()));
        Known {
            functions,
            settings: settings.keys().cloned().collect(),
            webhooks: webhooks.to_vec(),
        }
    }
}

/// Where a compiled text starts in its file: 0 lines and 0 columns for a
/// script; for a `when` condition, the lines and columns of the pipeline
/// file before it (the columns count on its first line only).
pub type Origin = (usize, usize);

/// Checks `ast`, compiled from the text at `origin` in `file`.
pub fn check(ast: &AST, file: &Path, origin: Origin, known: &Known) -> Vec<Diagnostic> {
    let (line_offset, column_offset) = origin;
    let own: HashSet<&str> = ast.iter_functions().map(|f| f.name).collect();
    let mut problems = Vec::new();
    let at = |pos: Position, message: String| {
        let line = pos.line().unwrap_or(1);
        let column = pos.position().unwrap_or(1) + if line == 1 { column_offset } else { 0 };
        Diagnostic::at(file, line + line_offset, column, message)
    };
    ast.walk(&mut |path: &[ASTNode]| {
        let (call, pos) = match path.last() {
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) => (call, pos),
            Some(ASTNode::Expr(Expr::FnCall(call, pos) | Expr::MethodCall(call, pos))) => {
                (call, pos)
            }
            Some(ASTNode::Expr(Expr::Dot(binary, _, _) | Expr::Index(binary, _, _))) => {
                if let Some((key, pos)) = settings_key(&binary.lhs, &binary.rhs) {
                    if !known.settings.iter().any(|k| k == key) {
                        problems.push(at(pos, unknown_setting(key, known)));
                    }
                }
                return true;
            }
            _ => return true,
        };
        let name = call.name.as_str();
        let plain = call.op_token.is_none() && call.namespace.is_empty();
        if plain && !known.functions.contains(name) && !own.contains(name) {
            problems.push(at(*pos, unknown_function(name, known, &own)));
        }
        if plain && name == "notify" && !own.contains(name) {
            if let Some(Expr::StringConstant(webhook, at_name)) = call.args.first() {
                if !known.webhooks.iter().any(|w| w == webhook.as_str()) {
                    problems.push(at(*at_name, unknown_webhook(webhook, known)));
                }
            }
        }
        true
    });
    problems
}

/// `settings.key` or `settings["key"]`: the key and where it is.
fn settings_key<'a>(lhs: &'a Expr, rhs: &'a Expr) -> Option<(&'a str, Position)> {
    let Expr::Variable(variable, _, _) = lhs else {
        return None;
    };
    if variable.1.as_str() != "settings" {
        return None;
    }
    match rhs {
        Expr::Property(property, pos) => Some((property.2.as_str(), *pos)),
        Expr::StringConstant(key, pos) => Some((key.as_str(), *pos)),
        // A further access (`settings.key.sub`, `settings.key[0]`).
        Expr::Dot(inner, _, _) | Expr::Index(inner, _, _) => match &inner.lhs {
            Expr::Property(property, pos) => Some((property.2.as_str(), *pos)),
            _ => None,
        },
        _ => None,
    }
}

fn unknown_webhook(name: &str, known: &Known) -> String {
    if known.webhooks.is_empty() {
        return format!("notify(): no webhook named `{name}`: the config has no [[webhook]]");
    }
    format!(
        "notify(): no webhook named `{name}`; the config's webhooks: {}",
        known.webhooks.join(", ")
    )
}

fn unknown_function(name: &str, known: &Known, own: &HashSet<&str>) -> String {
    let candidates = known
        .functions
        .iter()
        .map(String::as_str)
        .chain(own.iter().copied());
    match closest(name, candidates) {
        Some(near) => format!("unknown function `{name}`; did you mean `{near}`?"),
        None => format!("unknown function `{name}`"),
    }
}

fn unknown_setting(key: &str, known: &Known) -> String {
    let mut keys = known.settings.clone();
    keys.sort();
    let hint = closest(key, keys.iter().map(String::as_str))
        .map(|near| format!("; did you mean `settings.{near}`?"))
        .unwrap_or_default();
    format!(
        "`settings.{key}` is not set in the config's [settings] (it has: {}){hint}",
        keys.join(", ")
    )
}

/// The candidate nearest to `name`, if near enough to be a typo.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .filter(|c| !c.contains('$'))
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(distance, c)| *distance <= 2.max(name.len() / 4) && *distance < c.len())
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scripting::script::sandboxed_engine;

    fn problems(script: &str) -> Vec<String> {
        let engine = sandboxed_engine();
        let mut scope = rhai::Scope::new();
        scope.push_dynamic("event", rhai::Dynamic::UNIT);
        scope.push_dynamic("settings", rhai::Dynamic::UNIT);
        let ast = engine.compile_with_scope(&scope, script).unwrap();
        let settings: toml::Table =
            toml::from_str("account_created = \"x\"\nauto_ticket = false").unwrap();
        let known = Known::new(&engine, &settings, &["crm".to_string()]);
        check(&ast, Path::new("r.rhai"), (0, 0), &known)
            .into_iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn notify_must_name_a_webhook_of_the_config() {
        assert!(problems("notify(\"crm\", #{a: 1});").is_empty());
        let found = problems("let x = 1;\nnotify(\"crn\", #{a: 1});\n");
        assert_eq!(
            found,
            ["r.rhai:2:8: notify(): no webhook named `crn`; the config's webhooks: crm"]
        );
    }

    #[test]
    fn typos_in_function_names_are_found_with_a_suggestion() {
        let found = problems("let x = 1;\nclose_conversaton(event.conversation);\n");
        assert_eq!(
            found,
            ["r.rhai:2:1: unknown function `close_conversaton`; did you mean `close_conversation`?"]
        );
    }

    #[test]
    fn functions_of_the_api_the_packages_and_the_script_are_known() {
        let script = "fn helper(x) { x.len() }\nlet s = \"abc\".to_upper();\nlet n = helper(s) + max(1, 2);\nclose_conversation(\"c\");\nprint(type_of(n));\nlet f = Fn(\"helper\"); f.call(s);\nif \"a\" in [\"a\"] { log(`${n}`); }\n";
        assert_eq!(problems(script), Vec::<String>::new());
    }

    #[test]
    fn settings_the_config_does_not_set_are_found() {
        let found = problems("let a = settings.lead;\nlet b = settings[\"auto_tiket\"];\nlet c = settings.account_created;\n");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("r.rhai:1:18: `settings.lead` is not set"),
            "{found:?}"
        );
        assert!(
            found[1].contains("did you mean `settings.auto_ticket`?"),
            "{found:?}"
        );
    }
}
