import SignoffEngine

/// What a seed example may need from its host.
public struct SeedEnvironment: Sendable {
    /// The chat client behind the content-review worker (required by that example only).
    public var chatClient: (any ChatClient)?
    /// The secret number of the guessing example.
    public var targetNumber: Int

    public init(chatClient: (any ChatClient)? = nil, targetNumber: Int = 42) {
        self.chatClient = chatClient
        self.targetNumber = targetNumber
    }
}

/// One seed program, registrable by name (e.g. shipped as a job by the CLI).
public struct SeedExample: Sendable {
    /// The registration name, e.g. `"approval-gate"`.
    public let name: String
    /// One line on what it does and what input it takes.
    public let summary: String
    /// Builds the workflow.
    public let make: @Sendable (SeedEnvironment) throws -> Workflow
}

/// The seeds' programs written against the engine, and a name → factory table.
public enum SeedExamples {
    /// Every example, by name.
    public static let all: [SeedExample] = [
        SeedExample(name: "number-guessing", summary: "A judge asks a human for guesses until one is right; input: Int (first guess)") {
            try guessingWorkflow(targetNumber: $0.targetNumber)
        },
        SeedExample(name: "form-collector", summary: "Asks for a name, then an email, and registers them; input: String") { _ in
            try formWorkflow()
        },
        SeedExample(name: "approval-gate", summary: "Asks a human to approve an operation; input: String (the operation)") { _ in
            try approvalWorkflow()
        },
        SeedExample(name: "content-review", summary: "An LLM writes, a human reviews, the LLM revises until approved; input: [ChatMessage]") { env in
            guard let client = env.chatClient else {
                throw WorkflowError(.missingDependency, "the content-review example needs a chat client; configure an LLM")
            }
            return try contentReviewWorkflow(chatClient: client)
        },
    ]

    /// The example called `name`, or nil.
    public static func named(_ name: String) -> SeedExample? {
        all.first { $0.name == name }
    }
}
