//! Turning a ShareGPT conversation into (prompt, reply) pairs.
//!
//! Rules, in order (docs/DATASETS.md has the reasons):
//! 1. Roles: `from` is matched case-insensitively against the user, assistant and system
//!    spellings below. Anything else is an error, or dropped with `unknown_roles: skip`.
//! 2. Assistant turns before the first user turn are dropped.
//! 3. Consecutive turns of the same role are merged into one, joined by a blank line.
//! 4. System turns: with `system_prompt: fold` their text, and a blank line, starts the next
//!    user prompt; with `drop` they are dropped. A system turn with no user turn after it is
//!    dropped either way.
//! 5. A user turn that is empty (whitespace only) is dropped with the reply that answers it;
//!    system text waiting for it moves on to the next user turn.
//! 6. A conversation with at least one non-empty reply is "answered": every kept turn must
//!    have a reply, so turns without one (an empty reply, a trailing question) are dropped.
//!    A conversation with no reply at all (first-turn-only files) keeps its prompts and has
//!    no completions.

use bench_config::dataset::{SystemPrompt, UnknownRoles};

use super::parse::RawTurn;

/// `from` spellings read as the user.
pub(crate) const USER: &[&str] = &["human", "user", "prompter", "human_turn", "customer"];
/// `from` spellings read as the assistant.
pub(crate) const ASSISTANT: &[&str] = &[
    "gpt",
    "chatgpt",
    "assistant",
    "bard",
    "bing",
    "model",
    "bot",
    "ai",
    "claude",
    "gpt4",
    "gpt-4",
    "llm",
    "chatbot",
    "gemini",
];
/// `from` spellings read as a system prompt.
pub(crate) const SYSTEM: &[&str] = &["system", "system_prompt", "developer"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Assistant,
    System,
}

fn role(from: &str) -> Option<Role> {
    let f = from.trim().to_ascii_lowercase();
    if USER.contains(&f.as_str()) {
        Some(Role::User)
    } else if ASSISTANT.contains(&f.as_str()) {
        Some(Role::Assistant)
    } else if SYSTEM.contains(&f.as_str()) {
        Some(Role::System)
    } else {
        None
    }
}

/// What the shaping did, summed over conversations (reported in the stage's stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ShapeCounts {
    /// Assistant turns before the first user turn, dropped.
    pub leading_assistant_dropped: u64,
    /// Turns merged into the previous turn of the same role.
    pub merged: u64,
    /// System turns folded into a prompt.
    pub system_folded: u64,
    /// System turns dropped.
    pub system_dropped: u64,
    /// Turns with an unknown role, dropped (`unknown_roles: skip`).
    pub unknown_dropped: u64,
    /// Empty user turns dropped with their reply.
    pub empty_prompt_dropped: u64,
    /// Turns without a reply in an answered conversation, dropped.
    pub unanswered_dropped: u64,
}

impl ShapeCounts {
    pub(crate) fn stats(&self) -> [(&'static str, u64); 7] {
        [
            ("leading_assistant_dropped", self.leading_assistant_dropped),
            ("merged_turns", self.merged),
            ("system_folded", self.system_folded),
            ("system_dropped", self.system_dropped),
            ("unknown_role_dropped", self.unknown_dropped),
            ("empty_prompt_dropped", self.empty_prompt_dropped),
            ("unanswered_dropped", self.unanswered_dropped),
        ]
    }
}

/// Options of the shaping.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShapeOpts {
    pub system: SystemPrompt,
    pub unknown: UnknownRoles,
}

/// A conversation as (prompt, reply) pairs; replies are all Some (answered) or all None.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shaped {
    pub prompts: Vec<String>,
    pub replies: Option<Vec<String>>,
}

#[derive(Debug)]
struct Block {
    role: Role,
    texts: Vec<String>,
    /// System texts waiting for this user block.
    system: Vec<String>,
}

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// Shapes `turns` (see the module docs). `what` names the conversation in error messages.
pub(crate) fn shape(
    turns: Vec<RawTurn>,
    opts: ShapeOpts,
    what: &str,
    c: &mut ShapeCounts,
) -> Result<Shaped, String> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut pending_system: Vec<String> = Vec::new();
    for (k, t) in turns.into_iter().enumerate() {
        let Some(r) = role(&t.from) else {
            match opts.unknown {
                UnknownRoles::Skip => {
                    c.unknown_dropped += 1;
                    continue;
                }
                UnknownRoles::Error => {
                    return Err(format!(
                        "{what}, turn {k}: unknown role {:?} (user: {}; assistant: {}; system: {}); set dataset.sharegpt.unknown_roles: skip to drop such turns",
                        t.from,
                        USER.join("/"),
                        ASSISTANT.join("/"),
                        SYSTEM.join("/")
                    ));
                }
            }
        };
        let text = t.value.unwrap_or_default();
        match r {
            Role::System => {
                if !blank(&text) {
                    pending_system.push(text);
                }
            }
            Role::Assistant if blocks.is_empty() => c.leading_assistant_dropped += 1,
            _ => {
                let same = blocks.last().is_some_and(|b| b.role == r);
                if same {
                    c.merged += 1;
                } else {
                    blocks.push(Block {
                        role: r,
                        texts: Vec::new(),
                        system: Vec::new(),
                    });
                }
                let b = blocks.last_mut().expect("just pushed");
                if r == Role::User {
                    b.system.append(&mut pending_system);
                }
                if !blank(&text) {
                    b.texts.push(text);
                }
            }
        }
    }

    // Pair each user block with the assistant block after it.
    struct Pair {
        system: Vec<String>,
        texts: Vec<String>,
        reply: Option<String>,
    }
    let mut pairs: Vec<Pair> = Vec::new();
    let mut it = blocks.into_iter().peekable();
    while let Some(u) = it.next() {
        debug_assert_eq!(u.role, Role::User);
        let reply = it
            .next_if(|b| b.role == Role::Assistant)
            .filter(|a| !a.texts.is_empty())
            .map(|a| a.texts.join("\n\n"));
        pairs.push(Pair {
            system: u.system,
            texts: u.texts,
            reply,
        });
    }
    // Drops pairs failing `keep`; system text of a dropped pair moves to the next kept one.
    let filter = |pairs: Vec<Pair>,
                  keep: &dyn Fn(&Pair) -> bool,
                  dropped: &mut u64,
                  orphan: &mut Vec<String>| {
        let mut out: Vec<Pair> = Vec::with_capacity(pairs.len());
        let mut carry: Vec<String> = Vec::new();
        for mut p in pairs {
            if keep(&p) {
                carry.append(&mut p.system);
                p.system = carry;
                carry = Vec::new();
                out.push(p);
            } else {
                *dropped += 1;
                carry.append(&mut p.system);
            }
        }
        orphan.append(&mut carry);
        out
    };
    let mut orphan = pending_system;
    let pairs = filter(
        pairs,
        &|p: &Pair| !p.texts.is_empty(),
        &mut c.empty_prompt_dropped,
        &mut orphan,
    );
    let answered = pairs.iter().any(|p| p.reply.is_some());
    let pairs = if answered {
        filter(
            pairs,
            &|p: &Pair| p.reply.is_some(),
            &mut c.unanswered_dropped,
            &mut orphan,
        )
    } else {
        pairs
    };
    c.system_dropped += orphan.len() as u64;

    let mut prompts = Vec::with_capacity(pairs.len());
    let mut replies = Vec::with_capacity(pairs.len());
    for mut p in pairs {
        let prompt = match opts.system {
            SystemPrompt::Fold if !p.system.is_empty() => {
                c.system_folded += p.system.len() as u64;
                p.system.append(&mut p.texts);
                p.system.join("\n\n")
            }
            _ => {
                c.system_dropped += p.system.len() as u64;
                p.texts.join("\n\n")
            }
        };
        prompts.push(prompt);
        replies.push(p.reply.unwrap_or_default());
    }
    Ok(Shaped {
        prompts,
        replies: answered.then_some(replies),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(from: &str, value: &str) -> RawTurn {
        RawTurn {
            from: from.into(),
            value: Some(value.into()),
        }
    }

    const FOLD: ShapeOpts = ShapeOpts {
        system: SystemPrompt::Fold,
        unknown: UnknownRoles::Error,
    };

    fn run(turns: Vec<RawTurn>, opts: ShapeOpts) -> (Shaped, ShapeCounts) {
        let mut c = ShapeCounts::default();
        (shape(turns, opts, "conversation 0", &mut c).unwrap(), c)
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn alternating_turns_pair_up() {
        let (s, c) = run(
            vec![
                t("human", "q1"),
                t("gpt", "a1"),
                t("human", "q2"),
                t("gpt", "a2"),
            ],
            FOLD,
        );
        assert_eq!(
            s,
            Shaped {
                prompts: strs(&["q1", "q2"]),
                replies: Some(strs(&["a1", "a2"]))
            }
        );
        assert_eq!(c, ShapeCounts::default());
    }

    #[test]
    fn spellings_are_case_insensitive() {
        let (s, _) = run(
            vec![
                t("User", "q1"),
                t("ChatGPT", "a1"),
                t("HUMAN", "q2"),
                t("assistant", "a2"),
                t("user", "q3"),
                t("bard", "a3"),
            ],
            FOLD,
        );
        assert_eq!(s.prompts.len(), 3);
        assert_eq!(s.replies.unwrap().len(), 3);
    }

    #[test]
    fn system_is_folded_or_dropped() {
        let turns = || {
            vec![
                t("system", "Be brief."),
                t("human", "q1"),
                t("gpt", "a1"),
                t("system", "late"),
                t("human", "q2"),
                t("gpt", "a2"),
            ]
        };
        let (s, c) = run(turns(), FOLD);
        assert_eq!(s.prompts, strs(&["Be brief.\n\nq1", "late\n\nq2"]));
        assert_eq!(c.system_folded, 2);
        let (s, c) = run(
            turns(),
            ShapeOpts {
                system: SystemPrompt::Drop,
                ..FOLD
            },
        );
        assert_eq!(s.prompts, strs(&["q1", "q2"]));
        assert_eq!(c.system_dropped, 2);
        let (s, c) = run(
            vec![t("human", "q"), t("gpt", "a"), t("system", "bye")],
            FOLD,
        );
        assert_eq!(s.prompts, strs(&["q"]));
        assert_eq!(c.system_dropped, 1);
    }

    #[test]
    fn leading_assistant_turns_are_dropped() {
        let (s, c) = run(
            vec![
                t("gpt", "hello!"),
                t("gpt", "how can I help"),
                t("human", "q"),
                t("gpt", "a"),
            ],
            FOLD,
        );
        assert_eq!(
            s,
            Shaped {
                prompts: strs(&["q"]),
                replies: Some(strs(&["a"]))
            }
        );
        assert_eq!(c.leading_assistant_dropped, 2);
    }

    #[test]
    fn consecutive_same_role_turns_merge() {
        let (s, c) = run(
            vec![
                t("human", "q1"),
                t("human", "more"),
                t("gpt", "a1"),
                t("gpt", "a1b"),
                t("human", "q2"),
                t("gpt", "a2"),
            ],
            FOLD,
        );
        assert_eq!(s.prompts, strs(&["q1\n\nmore", "q2"]));
        assert_eq!(s.replies.unwrap(), strs(&["a1\n\na1b", "a2"]));
        assert_eq!(c.merged, 2);
    }

    #[test]
    fn empty_values_drop_their_pair_and_keep_system_text() {
        let (s, c) = run(
            vec![
                t("system", "S"),
                t("human", "  "),
                t("gpt", "reply to nothing"),
                t("human", "q2"),
                t("gpt", ""),
                t("human", "q3"),
                t("gpt", "a3"),
            ],
            FOLD,
        );
        assert_eq!(s.prompts, strs(&["S\n\nq3"]));
        assert_eq!(s.replies.unwrap(), strs(&["a3"]));
        assert_eq!(c.empty_prompt_dropped, 1);
        assert_eq!(c.unanswered_dropped, 1);
        assert_eq!(c.system_folded, 1);
        // A null value is empty too.
        let (s, _) = run(
            vec![
                RawTurn {
                    from: "human".into(),
                    value: None,
                },
                t("human", "q"),
            ],
            FOLD,
        );
        assert_eq!(s.prompts, strs(&["q"]));
    }

    #[test]
    fn unanswered_conversations_keep_prompts_without_completions() {
        let (s, c) = run(vec![t("human", "only question")], FOLD);
        assert_eq!(
            s,
            Shaped {
                prompts: strs(&["only question"]),
                replies: None
            }
        );
        assert_eq!(c, ShapeCounts::default());
        // A trailing question after answered turns is dropped.
        let (s, c) = run(
            vec![t("human", "q1"), t("gpt", "a1"), t("human", "q2")],
            FOLD,
        );
        assert_eq!(
            s,
            Shaped {
                prompts: strs(&["q1"]),
                replies: Some(strs(&["a1"]))
            }
        );
        assert_eq!(c.unanswered_dropped, 1);
        let (s, _) = run(vec![], FOLD);
        assert!(s.prompts.is_empty());
    }

    #[test]
    fn unknown_roles_error_or_skip() {
        let mut c = ShapeCounts::default();
        let e = shape(
            vec![t("human", "q"), t("tool", "x")],
            FOLD,
            "conversation 3 (id abc)",
            &mut c,
        )
        .unwrap_err();
        assert!(
            e.starts_with("conversation 3 (id abc), turn 1: unknown role \"tool\""),
            "{e}"
        );
        let (s, c) = run(
            vec![t("human", "q"), t("tool", "x"), t("gpt", "a")],
            ShapeOpts {
                unknown: UnknownRoles::Skip,
                ..FOLD
            },
        );
        assert_eq!(s.prompts, strs(&["q"]));
        assert_eq!(c.unknown_dropped, 1);
    }
}
