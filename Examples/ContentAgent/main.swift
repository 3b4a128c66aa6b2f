// content-agent: the seed's worker/reviewer content loop driven as an agent, with a real chat client.
//
//   SIGNOFF_LLM_BASE_URL=http://127.0.0.1:11434/v1 SIGNOFF_LLM_MODEL=llama3.1 \
//     content-agent "Write a haiku about batch jobs"
//
// The workflow pauses for a human review; the agent surfaces it as a `request_info` function call.
// This program shows the draft, asks the reviewer (APPROVE, or feedback to regenerate), and sends
// the decision back as the function result with the same call id, until the draft is approved.
// `--answer TEXT` (repeatable) supplies the reviewer's answers in order, before stdin is asked.
// The client reads the SIGNOFF_LLM_* environment (SIGNOFF_LLM_API_KEY for the key).
import Foundation
import SignoffEngine
import SignoffExamples
import SignoffLLM

/// The arguments of a `request_info` function call (`WorkflowAgent.RequestInfoFunctionArgs` in the seed).
struct RequestInfoFunctionArgs: Decodable {
    var request_id: String
    var data: HumanReviewRequest
}

func fail(_ message: String, status: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("content-agent: \(message)\n".utf8))
    exit(status)
}

// Command line: --answer TEXT (repeatable), then the prompt.
var answers: [String] = []
var words: [String] = []
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--answer":
        guard let answer = arguments.popFirst() else { fail("--answer needs a value: APPROVE or feedback text", status: 2) }
        answers.append(answer)
    case "-h", "--help":
        print("usage: content-agent [--answer APPROVE|FEEDBACK]... PROMPT\n"
              + "environment: SIGNOFF_LLM_BASE_URL, SIGNOFF_LLM_MODEL, SIGNOFF_LLM_API_KEY (see README)")
        exit(0)
    default:
        words.append(argument)
    }
}
let prompt = words.joined(separator: " ")
guard !prompt.isEmpty else { fail("no prompt; run: content-agent \"Write a haiku about batch jobs\"", status: 2) }

/// The `request_info` function call among the agent's messages, if the workflow paused for review.
func humanReviewFunctionCall(in messages: [ChatMessage]) -> (callID: String, arguments: String)? {
    for content in messages.flatMap(\.contents).reversed() {
        if case .functionCall(let callID, WorkflowAgent.requestInfoFunctionName, let arguments) = content { return (callID, arguments) }
    }
    return nil
}

/// The reviewer's next answer: the next `--answer`, else a line from stdin.
@MainActor func nextAnswer() -> String {
    print("Reviewer (APPROVE, or feedback to regenerate)> ", terminator: "")
    if !answers.isEmpty {
        let answer = answers.removeFirst()
        print(answer)
        return answer
    }
    fflush(nil)  // show the question before waiting
    guard let line = readLine(), !line.trimmingCharacters(in: .whitespaces).isEmpty else {
        print()
        fail("no answer from the reviewer (stdin closed or empty line); pass --answer APPROVE or feedback text", status: 3)
    }
    return line
}

// Build the worker/reviewer workflow as an agent over the configured chat client.
let chatClient: OpenAIChatClient
do {
    chatClient = try OpenAIChatClient(configuration: LLMConfiguration())
} catch {
    fail("\(error)", status: 2)
}
let agent = try SeedExamples.contentReviewAgent(chatClient: chatClient)

do {
    // Run the agent with an initial query.
    print("Query: \(prompt)")
    var response = try await agent.run(prompt)

    // Locate the human review function call in the response messages; loop until approved.
    while let call = humanReviewFunctionCall(in: response) {
        // Parse the human review request arguments.
        let request = try JSONDecoder().decode(RequestInfoFunctionArgs.self, from: Data(call.arguments.utf8))
        guard let agentRequest = request.data.agentRequest else { fail("the review request carries no draft") }
        print("\nWorkflow paused - human review required (request \(request.request_id.prefix(8)))")
        print("Draft:\n\(agentRequest.agentMessages.map(\.text).joined(separator: "\n"))\n")

        // Ask the human: APPROVE, or feedback for the worker.
        let answer = nextAnswer()
        let approved = answer.trimmingCharacters(in: .whitespaces).uppercased() == "APPROVE"
        let humanResponse = ReviewResponse(requestID: agentRequest.requestID,
                                           feedback: approved ? "Approved" : answer, approved: approved)

        // Send the human review result back to the agent, under the function call's id.
        let result = String(decoding: try JSONEncoder().encode(humanResponse), as: UTF8.self)
        response = try await agent.run([ChatMessage(role: .tool, contents: [.functionResult(callID: call.callID, result: result)])])
    }
    print("\nFinal Agent Response:\n\(response.last?.text ?? "")")
} catch {
    fail("\(error)")
}
