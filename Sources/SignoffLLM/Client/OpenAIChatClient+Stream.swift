import Foundation
import SignoffEngine

/// One update of a streamed chat completion.
public struct ChatStreamUpdate: Sendable, Hashable {
    /// New text since the previous update (may be empty).
    public var text: String
    /// Function calls the model asked for, complete; only on the update that ends the choice.
    public var functionCalls: [ChatContent]
    /// Token counts; on the last update when the server reports them.
    public var usage: ChatUsage?
    /// Why generation stopped (`stop`, `length`, `tool_calls`…), on the update that ends it.
    public var finishReason: String?
    /// The model the server names.
    public var model: String?

    public init(text: String = "", functionCalls: [ChatContent] = [], usage: ChatUsage? = nil,
                finishReason: String? = nil, model: String? = nil) {
        self.text = text
        self.functionCalls = functionCalls
        self.usage = usage
        self.finishReason = finishReason
        self.model = model
    }
}

extension OpenAIChatClient {
    /// Streams a chat completion through server-sent events (`"stream": true` with
    /// `stream_options.include_usage`). Failures before the first event are retried like
    /// ``complete(_:options:tools:)``; once text has arrived, a failure ends the stream with
    /// the error. Ending the iteration early aborts the transfer.
    public func stream(_ messages: [ChatMessage], options: ChatOptions,
                       tools: [ChatToolDefinition] = []) -> ChatCompletionStream {
        ChatCompletionStream(client: self, messages: messages, options: options, tools: tools)
    }
}

/// The updates of one streamed completion; see ``OpenAIChatClient/stream(_:options:tools:)``.
public struct ChatCompletionStream: AsyncSequence, Sendable {
    public typealias Element = ChatStreamUpdate

    let client: OpenAIChatClient
    let messages: [ChatMessage]
    let options: ChatOptions
    let tools: [ChatToolDefinition]

    public func makeAsyncIterator() -> Iterator {
        Iterator(client: client, messages: messages, options: options, tools: tools)
    }

    /// Reads events from the transport and turns them into updates.
    public struct Iterator: AsyncIteratorProtocol {
        let client: OpenAIChatClient
        let messages: [ChatMessage]
        let options: ChatOptions
        let tools: [ChatToolDefinition]

        private var upstream: AsyncThrowingStream<HTTPStreamEvent, any Error>.AsyncIterator?
        private var started = false
        private var finished = false
        private var buffer = Data()
        private var pending: [ChatStreamUpdate] = []
        private var calls: [Int: (id: String, name: String, arguments: String)] = [:]
        private var model: String?

        init(client: OpenAIChatClient, messages: [ChatMessage], options: ChatOptions, tools: [ChatToolDefinition]) {
            self.client = client
            self.messages = messages
            self.options = options
            self.tools = tools
        }

        public mutating func next() async throws -> ChatStreamUpdate? {
            while true {
                if !pending.isEmpty { return pending.removeFirst() }
                if finished { return nil }
                if !started {
                    started = true
                    guard let streaming = client.transport as? any HTTPStreamingTransport else {
                        // A transport without streaming: one update with the whole answer.
                        let response = try await client.complete(messages, options: options, tools: tools)
                        let contents = response.messages.flatMap(\.contents)
                        pending.append(ChatStreamUpdate(
                            text: response.text,
                            functionCalls: contents.filter { if case .functionCall = $0 { true } else { false } },
                            usage: response.usage, finishReason: "stop", model: response.model))
                        finished = true
                        continue
                    }
                    upstream = try await open(streaming)
                    continue
                }
                let event: HTTPStreamEvent?
                do {
                    event = try await upstream?.next()
                } catch let failure as HTTPTransportFailure {
                    if failure.kind == .cancelled { throw CancellationError() }
                    throw client.transportError(failure)
                }
                guard let event else {
                    flushCalls(finishReason: nil)
                    finished = true
                    continue
                }
                if case .data(let chunk) = event {
                    buffer.append(chunk)
                    try consumeLines()
                }
            }
        }

        /// Sends the request until a 2xx head arrives, retrying like `complete`.
        private func open(_ transport: any HTTPStreamingTransport) async throws -> AsyncThrowingStream<HTTPStreamEvent, any Error>.AsyncIterator {
            let body = try client.requestBody(messages, options: options, tools: tools, stream: true)
            var request = client.httpRequest(body: body)
            request.headers = request.headers.map { $0.name == "Accept" ? ("Accept", "text/event-stream") : $0 }
            let model = client.displayModel(options)
            var attempt = 0
            while true {
                try Task.checkCancellation()
                var iterator = transport.stream(request).makeAsyncIterator()
                let error: LLMError
                var retryHeaders: [String: String] = [:]
                do {
                    guard case .head(let status, let headers)? = try await iterator.next() else {
                        throw LLMError(code: .invalidResponse, message: "the stream from \(client.endpoint) ended before any answer",
                                       fix: "check the server's log")
                    }
                    if (200..<300).contains(status) { return iterator }
                    var errorBody = Data()
                    while let e = try await iterator.next() {
                        if case .data(let d) = e, errorBody.count < 65536 { errorBody.append(d) }
                    }
                    error = client.httpError(HTTPResponse(status: status, headers: headers, body: errorBody), model: model)
                    retryHeaders = headers
                } catch let failure as HTTPTransportFailure {
                    if failure.kind == .cancelled { throw CancellationError() }
                    error = client.transportError(failure)
                }
                guard OpenAIChatClient.isRetryable(error), attempt < client.retry.maxRetries else { throw error }
                try await client.retry.sleep(client.retry.delay(attempt: attempt, headers: retryHeaders))
                attempt += 1
            }
        }

        /// Parses every complete line in the buffer; `data:` lines become updates.
        private mutating func consumeLines() throws {
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                var line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                if line.hasSuffix("\r") { line.removeLast() }
                guard line.hasPrefix("data:") else { continue }  // comments, event:, id:, blank separators
                let payload = line.dropFirst(5).trimmingCharacters(in: .whitespaces)
                if payload == "[DONE]" {
                    flushCalls(finishReason: nil)
                    finished = true
                    return
                }
                try handle(Data(payload.utf8))
            }
        }

        private mutating func handle(_ json: Data) throws {
            guard let chunk = try? JSONDecoder().decode(ChatCompletionsWire.StreamChunk.self, from: json),
                  chunk.choices != nil || chunk.usage != nil else {
                // An error event in the middle of the stream.
                let model = client.displayModel(options)
                throw client.httpError(HTTPResponse(status: 500, body: json), model: model)
            }
            if let m = chunk.model { model = m }
            for choice in chunk.choices ?? [] {
                var update = ChatStreamUpdate(text: choice.delta?.content ?? "", model: model)
                for call in choice.delta?.toolCalls ?? [] {
                    let index = call.index ?? calls.count
                    var entry = calls[index] ?? (id: "", name: "", arguments: "")
                    if let id = call.id { entry.id = id }
                    if let name = call.function?.name { entry.name += name }
                    if let args = call.function?.arguments { entry.arguments += args }
                    calls[index] = entry
                }
                if let reason = choice.finishReason {
                    update.finishReason = reason
                    update.functionCalls = takeCalls()
                }
                if !update.text.isEmpty || update.finishReason != nil { pending.append(update) }
            }
            if let usage = chunk.usage {
                pending.append(ChatStreamUpdate(
                    usage: ChatUsage(promptTokens: usage.promptTokens ?? 0, completionTokens: usage.completionTokens ?? 0),
                    model: model))
            }
        }

        private mutating func takeCalls() -> [ChatContent] {
            let result = calls.keys.sorted().compactMap { key -> ChatContent? in
                guard let c = calls[key] else { return nil }
                return .functionCall(callID: c.id, name: c.name, arguments: c.arguments.isEmpty ? "{}" : c.arguments)
            }
            calls = [:]
            return result
        }

        private mutating func flushCalls(finishReason: String?) {
            let rest = takeCalls()
            if !rest.isEmpty { pending.append(ChatStreamUpdate(functionCalls: rest, finishReason: finishReason, model: model)) }
        }
    }
}
