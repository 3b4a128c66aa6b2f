import SignoffEngine

/// The first question of the form.
public struct NamePrompt: WorkflowPayload, Hashable {
    public static let typeName = "NamePrompt"
    public var text: String
    public init(_ text: String) { self.text = text }
}

/// The second question of the form.
public struct EmailPrompt: WorkflowPayload, Hashable {
    public static let typeName = "EmailPrompt"
    public var text: String
    public init(_ text: String) { self.text = text }
}

/// Collects a name, then an email, with two sequential requests (seed: `FormCollector`).
///
/// The seed keys both response handlers by (str, str); here each question has its own request
/// type, because response handlers are keyed by (request type, response type).
public struct FormCollector: Executor {
    public let id = "form"
    public init() {}

    public func declare(_ h: inout ExecutorHandlers) {
        h.on(String.self) { _, ctx in
            try ctx.requestInfo(NamePrompt("Enter your name:"), responseType: String.self, requestID: "name")
        }
        h.onResponse(to: NamePrompt.self, String.self) { _, response, ctx in
            ctx.setState("name", response)
            try ctx.requestInfo(EmailPrompt("Enter your email:"), responseType: String.self, requestID: "email")
        }
        h.onResponse(to: EmailPrompt.self, String.self) { _, response, ctx in
            let name = try ctx.state("name", as: String.self) ?? ""
            try ctx.yieldOutput("Registered \(name) with email \(response)")
        }
        h.yields(String.self)
    }
}

extension SeedExamples {
    /// The form collector as a workflow: input any `String`.
    public static func formWorkflow() throws -> Workflow {
        try WorkflowBuilder(name: "form-collector").addExecutor(FormCollector()).setStart("form").build()
    }
}
