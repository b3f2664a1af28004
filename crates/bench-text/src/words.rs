//! Word classes and sentence templates of the prompt text.
//!
//! Templates are space-separated: a word, a punctuation mark (`.` `,` `?`), or a slot
//! (`{n}` noun, `{p}` plural noun, `{a}` adjective, `{v}` verb, `{g}` verb -ing, `{r}` adverb,
//! `{t}` field of work). Every word must be a single token with its leading space under the
//! tokenizer; words and templates that are not are dropped when the vocabulary is built.

pub(crate) const NOUNS: &[&str] = &[
    "system", "model", "server", "network", "report", "project", "team", "plan", "result", "problem", "method",
    "process", "function", "table", "file", "user", "service", "request", "response", "question", "answer",
    "example", "design", "program", "language", "market", "product", "company", "customer", "student",
    "teacher", "school", "city", "country", "house", "garden", "book", "story", "letter", "message", "meeting",
    "budget", "price", "cost", "value", "level", "rate", "test", "change", "issue", "idea", "point", "part",
    "way", "time", "day", "week", "year", "game", "music", "movie", "song", "recipe", "dinner", "trip", "car",
    "road", "river", "mountain", "window", "door", "phone", "computer", "machine", "engine", "device", "tool",
    "library", "database", "query", "index", "cache", "memory", "disk", "log", "error", "bug", "feature",
    "version", "release", "update", "class", "object", "field", "record", "list", "graph", "chart", "map",
    "image", "video", "page", "site", "link", "email", "account", "password", "policy", "rule", "law", "contract",
    "business", "strategy", "goal", "task", "job", "career", "skill", "course", "lesson", "exam", "paper",
    "article", "blog", "post", "title", "summary", "draft", "outline", "section", "chapter", "character",
    "scene", "plot", "event", "party", "gift", "friend", "family", "child", "doctor", "patient", "health",
    "diet", "exercise", "energy", "water", "food", "coffee", "weather", "season", "morning", "evening", "office",
    "client", "partner", "manager", "leader", "budget", "sales", "brand", "campaign", "audience", "channel",
    "signal", "sensor", "battery", "circuit", "robot", "vehicle", "building", "bridge", "station", "airport",
];

pub(crate) const PLURALS: &[&str] = &[
    "systems", "models", "servers", "users", "results", "problems", "methods", "functions", "files", "services",
    "requests", "questions", "answers", "examples", "products", "customers", "students", "teachers", "books",
    "stories", "messages", "meetings", "prices", "values", "tests", "changes", "issues", "ideas", "points",
    "parts", "days", "weeks", "years", "games", "songs", "recipes", "cars", "roads", "tools", "records", "lists",
    "images", "videos", "pages", "links", "rules", "goals", "tasks", "jobs", "skills", "courses", "lessons",
    "articles", "posts", "sections", "characters", "events", "friends", "children", "patients", "teams",
    "plans", "reports", "projects", "features", "errors", "details", "steps", "options", "costs", "numbers",
    "words", "people", "companies", "markets", "devices", "machines", "data", "notes", "tips", "reasons",
];

pub(crate) const ADJECTIVES: &[&str] = &[
    "simple", "complex", "new", "old", "large", "small", "fast", "slow", "good", "better", "best", "bad", "clear",
    "common", "different", "similar", "important", "main", "basic", "advanced", "early", "late", "final", "full",
    "short", "long", "high", "low", "strong", "weak", "safe", "secure", "public", "private", "local", "global",
    "modern", "classic", "popular", "useful", "practical", "efficient", "reliable", "flexible", "stable",
    "specific", "general", "detailed", "brief", "quick", "easy", "hard", "difficult", "free", "open", "available",
    "current", "recent", "next", "previous", "natural", "social", "personal", "professional", "technical",
    "financial", "legal", "medical", "creative", "digital", "physical", "real", "typical", "major", "minor",
    "possible", "likely", "direct", "formal", "friendly", "healthy", "happy", "quiet", "busy", "bright", "warm",
    "cold", "fresh", "green", "blue", "red", "black", "white", "young", "small", "entire", "whole", "single",
];

pub(crate) const VERBS: &[&str] = &[
    "build", "write", "read", "explain", "improve", "design", "test", "check", "find", "make", "create", "use",
    "run", "start", "stop", "change", "move", "keep", "help", "show", "send", "share", "plan", "manage", "measure",
    "compare", "choose", "learn", "teach", "understand", "describe", "review", "update", "fix", "install",
    "configure", "deploy", "train", "store", "load", "save", "open", "close", "connect", "support", "reduce",
    "increase", "handle", "process", "solve", "answer", "follow", "organize", "prepare", "present", "discuss",
    "analyze", "convert", "translate", "summarize", "rewrite", "edit", "format", "sort", "filter", "count",
    "track", "monitor", "protect", "avoid", "cook", "visit", "buy", "sell", "pay", "drive", "play", "watch",
];

pub(crate) const GERUNDS: &[&str] = &[
    "building", "writing", "reading", "testing", "running", "using", "learning", "teaching", "working",
    "planning", "making", "cooking", "playing", "training", "moving", "growing", "changing", "looking",
    "thinking", "trying", "starting", "managing", "creating", "designing", "improving", "checking", "sharing",
];

pub(crate) const ADVERBS: &[&str] = &[
    "quickly", "slowly", "carefully", "easily", "clearly", "directly", "usually", "often", "always", "never",
    "really", "simply", "properly", "correctly", "together", "again", "later", "soon", "today", "now", "also",
    "still", "only", "exactly", "mostly", "fully", "safely", "early", "online", "locally",
];

pub(crate) const FIELDS: &[&str] = &[
    "physics", "chemistry", "biology", "history", "economics", "finance", "marketing", "design", "music",
    "cooking", "travel", "security", "networking", "statistics", "mathematics", "programming", "writing",
    "education", "health", "fitness", "law", "medicine", "engineering", "science", "art", "philosophy",
    "psychology", "management", "research", "data", "software", "hardware", "robotics", "energy", "climate",
];

/// Sentence templates. The first word of each is capitalized (a sentence start).
pub(crate) const TEMPLATES: &[&str] = &[
    "Could you explain how the {a} {n} works with the {n} ?",
    "I need to understand {t} for my {a} {n} .",
    "For context , I have experience with {t} but I am new to this {a} area .",
    "I have been trying to {v} the {n} for a {a} {n} .",
    "Please {v} the {a} {n} and {v} the {p} {r} .",
    "What is the {a} way to {v} a {n} in {t} ?",
    "The {n} should {v} the {p} before the {a} {n} is ready .",
    "We want to {v} our {n} so that the {p} can {v} {r} .",
    "Can you help me {v} a {a} {n} for my {n} ?",
    "My team uses {t} to {v} the {p} every day .",
    "It would help to see an example of a {a} {n} .",
    "Also , how does the {n} {v} when the {n} is {a} ?",
    "I am asking because I need to {v} a {n} for a {a} {n} .",
    "Give me a {a} summary of the {n} and the {p} .",
    "Then {v} the {p} and {v} the {a} {n} .",
    "Which {p} are most {a} for {g} a {n} ?",
    "In my {n} , the {p} are {a} and the {n} is {a} .",
    "I would like to {v} the {n} {r} , without {g} the {p} .",
    "Is it {a} to {v} the {n} before {g} the {p} ?",
    "Our {n} has many {p} , and each {n} has a {a} {n} .",
    "She said the {n} was {a} , so we {r} decided to {v} it .",
    "Write a {a} {n} about {t} for a {a} {n} .",
    "How can I {v} my {p} {r} and still {v} the {n} ?",
    "List the {a} {p} of {g} a {n} in {t} .",
    "There is a {a} {n} in the {n} , and it can {v} the {p} .",
    "Many {p} in {t} {v} the {n} in a {a} way .",
    "When should a {n} {v} the {p} ?",
    "After {g} the {n} , I will {v} the {a} {p} .",
    "Tell me more about the {n} and why it is {a} .",
    "The {a} {n} helps the {p} {v} the {n} {r} .",
];
