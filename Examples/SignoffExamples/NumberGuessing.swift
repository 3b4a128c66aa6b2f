import SignoffEngine

/// The hint the judge sends back with each request for a new guess (seed: `NumberSignal`).
public struct NumberSignal: WorkflowPayload, Hashable {
    public static let typeName = "NumberSignal"
    /// "init", "above" or "below".
    public var hint: String
    public init(hint: String) { self.hint = hint }
}

/// Judges guesses of a secret number; asks a human for a new guess until one is right
/// (seed: the number-guessing `JudgeExecutor`).
public actor JudgeExecutor: StatefulExecutor {
    public nonisolated let id = "judge"
    private let targetNumber: Int
    private var tries = 0

    public init(targetNumber: Int) {
        self.targetNumber = targetNumber
    }

    public nonisolated func declare(_ h: inout ExecutorHandlers) {
        h.on(Int.self) { guess, ctx in try await self.handleGuess(guess, ctx) }
        h.onResponse(to: NumberSignal.self, Int.self) { original, response, ctx in
            try await self.onHumanResponse(original, response, ctx)
        }
        h.yields(String.self)
    }

    func handleGuess(_ guess: Int, _ ctx: WorkflowContext) throws {
        tries += 1
        if guess == targetNumber {
            try ctx.yieldOutput("\(targetNumber) found in \(tries) tries!")
        } else if guess < targetNumber {
            try ctx.requestInfo(NumberSignal(hint: "below"), responseType: Int.self)
        } else {
            try ctx.requestInfo(NumberSignal(hint: "above"), responseType: Int.self)
        }
    }

    func onHumanResponse(_ originalRequest: NumberSignal, _ response: Int, _ ctx: WorkflowContext) throws {
        try handleGuess(response, ctx)
    }

    public func snapshot() -> Int { tries }
    public func restore(_ snapshot: Int) { tries = snapshot }
}

extension SeedExamples {
    /// `WorkflowBuilder(start_executor=judge).build()`: input an `Int` guess.
    public static func guessingWorkflow(targetNumber: Int = 42) throws -> Workflow {
        try WorkflowBuilder(name: "number-guessing")
            .addExecutor { JudgeExecutor(targetNumber: targetNumber) }
            .setStart("judge")
            .build()
    }
}
