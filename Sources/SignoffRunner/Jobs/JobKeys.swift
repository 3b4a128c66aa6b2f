/// Every key a job file accepts, per mapping. The parser rejects anything else, and a test checks
/// that `schema/job.schema.json` lists exactly these.
public enum JobKeys {
    public static let job = ["name", "description", "owner", "schedule", "input", "retry", "timeout",
                             "template", "max_supersteps", "steps"]
    public static let stepKinds = ["shell", "approval", "ask", "llm", "executor"]
    public static let step = ["id", "needs", "timeout", "retry", "env"] + stepKinds
    public static let retry = ["attempts", "backoff", "max_backoff"]
    public static let policy = ["reviewers", "subject", "show", "template", "quorum", "reject_on",
                                "expires_after", "on_timeout", "remind_every", "reminders",
                                "escalate_to", "delegates", "forbid"]
    public static let approval = policy + ["on_reject", "max_rounds", "require_reason"]
    public static let ask = policy + ["question", "type", "choices"]
    public static let llm = ["system", "prompt", "model", "temperature", "max_tokens"]
    public static let executor = ["name", "with", "reviewers", "subject"]

    /// The mappings by their JSON Schema definition name (`#/$defs/NAME`), for the schema test.
    public static let byDefinition: [String: [String]] = [
        "job": job, "step": step, "retry": retry, "approval": approval, "ask": ask, "llm": llm,
        "executor": executor,
    ]

    /// The fields of `{{steps.ID.FIELD}}` per step kind (`json` may be followed by a path).
    public static let stepFields: [String: [String]] = [
        "shell": ["stdout", "stderr", "exit_code", "json"],
        "llm": ["text", "json", "model"],
        "approval": ["decision", "reason", "comment", "by"],
        "ask": ["value", "by"],
        "executor": ["output", "json"],
    ]
    /// `{{run.…}}` fields.
    public static let runFields = ["id", "attempt", "requested_by", "job", "started_at"]
    /// `{{job.…}}` fields.
    public static let jobFields = ["name", "description", "owner"]
}
