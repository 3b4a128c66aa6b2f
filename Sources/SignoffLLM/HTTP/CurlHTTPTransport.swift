import CCurl
import Foundation

/// HTTP over libcurl's easy interface.
///
/// `curl_easy_perform` blocks, so each transfer runs on a dedicated GCD queue (never on Swift's
/// cooperative pool) and is bridged back with a continuation. Task cancellation aborts the
/// transfer through curl's progress callback.
public struct CurlHTTPTransport: HTTPTransport {
    /// Responses larger than this are refused (a chat completion is far smaller).
    public var maxResponseBytes: Int

    public init(maxResponseBytes: Int = 32 << 20) {
        self.maxResponseBytes = maxResponseBytes
    }

    private static let queue = DispatchQueue(label: "signoff.llm.curl", qos: .userInitiated, attributes: .concurrent)

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        _ = curlGlobalInit
        let flag = CancelFlag()
        let limit = maxResponseBytes
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponse, any Error>) in
                Self.queue.async {
                    continuation.resume(with: Result { try performTransfer(request, cancel: flag, limit: limit) })
                }
            }
        } onCancel: {
            flag.cancel()
        }
    }
}

/// curl_global_init once per process (thread-safe lazy global).
private let curlGlobalInit: CURLcode = curl_global_init(3 /* CURL_GLOBAL_ALL */)

/// A cancellation flag read by curl's progress callback on the transfer thread.
final class CancelFlag: @unchecked Sendable /* state guarded by `lock` */ {
    private let lock = NSLock()
    private var cancelled = false
    func cancel() { lock.withLock { cancelled = true } }
    var isCancelled: Bool { lock.withLock { cancelled } }
}

/// What the callbacks fill during one transfer; owned by the transfer thread alone.
private final class TransferState {
    var body = Data()
    var headers: [String: String] = [:]
    var tooLarge = false
    var status = 0
    let limit: Int
    let cancel: CancelFlag
    /// Streaming mode: receives the head, then each body chunk, instead of `body` filling up.
    /// Returns false to abort the transfer.
    let sink: ((HTTPStreamEvent) -> Bool)?
    init(limit: Int, cancel: CancelFlag, sink: ((HTTPStreamEvent) -> Bool)?) {
        self.limit = limit
        self.cancel = cancel
        self.sink = sink
    }
}

private func curlWriteCallback(_ buffer: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                               _ context: UnsafeMutableRawPointer?) -> Int {
    guard let buffer, let context else { return 0 }
    let state = Unmanaged<TransferState>.fromOpaque(context).takeUnretainedValue()
    let n = size * count
    if let sink = state.sink {
        let chunk = Data(UnsafeRawBufferPointer(start: buffer, count: n))
        return sink(.data(chunk)) ? n : 0
    }
    if state.body.count + n > state.limit {
        state.tooLarge = true
        return 0
    }
    state.body.append(UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: n)
    return n
}

private func curlHeaderCallback(_ buffer: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                                _ context: UnsafeMutableRawPointer?) -> Int {
    guard let buffer, let context else { return 0 }
    let state = Unmanaged<TransferState>.fromOpaque(context).takeUnretainedValue()
    let n = size * count
    let line = String(decoding: UnsafeRawBufferPointer(start: buffer, count: n), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        state.headers = [:]  // a new response (after 100-continue or a redirect) starts over
        let fields = line.split(separator: " ", maxSplits: 2)
        state.status = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
    } else if line == "\r\n" || line == "\n" {
        if let sink = state.sink, state.status >= 200 {
            return sink(.head(status: state.status, headers: state.headers)) ? n : 0
        }
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        state.headers[name] = value
    }
    return n
}

private func curlProgressCallback(_ context: UnsafeMutableRawPointer?, _ dltotal: curl_off_t, _ dlnow: curl_off_t,
                                  _ ultotal: curl_off_t, _ ulnow: curl_off_t) -> Int32 {
    guard let context else { return 0 }
    let state = Unmanaged<TransferState>.fromOpaque(context).takeUnretainedValue()
    return state.cancel.isCancelled ? 1 : 0
}

/// The blocking transfer; runs on the curl queue.
func performTransfer(_ request: HTTPRequest, cancel: CancelFlag, limit: Int,
                     sink: ((HTTPStreamEvent) -> Bool)? = nil) throws -> HTTPResponse {
    guard let handle = curl_easy_init() else {
        throw HTTPTransportFailure(kind: .other, detail: "curl_easy_init failed")
    }
    defer { curl_easy_cleanup(handle) }

    var headerList: UnsafeMutablePointer<curl_slist>? = nil
    defer { curl_slist_free_all(headerList) }
    for header in request.headers {
        headerList = curl_slist_append(headerList, "\(header.name): \(header.value)")
    }
    headerList = curl_slist_append(headerList, "Expect:")  // no 100-continue round trip

    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    defer { errorBuffer.deallocate() }

    let state = TransferState(limit: limit, cancel: cancel, sink: sink)
    let context = Unmanaged.passRetained(state)
    defer { context.release() }

    _ = signoff_curl_setopt_string(handle, CURLOPT_URL, request.url)
    _ = signoff_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
    _ = signoff_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(request.connectTimeout * 1000)))
    _ = signoff_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, Int(request.timeout * 1000)))
    _ = signoff_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
    _ = signoff_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
    _ = signoff_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer)
    _ = signoff_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList)
    _ = signoff_curl_setopt_write_function(handle, curlWriteCallback)
    _ = signoff_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context.toOpaque())
    _ = signoff_curl_setopt_header_function(handle, curlHeaderCallback)
    _ = signoff_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context.toOpaque())
    _ = signoff_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
    _ = signoff_curl_setopt_xferinfo_function(handle, curlProgressCallback)
    _ = signoff_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, context.toOpaque())

    if request.method == "POST" {
        _ = signoff_curl_setopt_long(handle, CURLOPT_POST, 1)
        _ = signoff_curl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count))
        // COPYPOSTFIELDS copies the bytes, so the buffer need only live for this call.
        var body = request.body
        if body.isEmpty { body = Data([0]) }
        _ = body.withUnsafeMutableBytes { raw in
            signoff_curl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, raw.baseAddress)
        }
    } else if request.method != "GET" {
        _ = signoff_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
    }

    let code = curl_easy_perform(handle)
    // Read the error text at once: the next call on the handle may overwrite it.
    var detail = String(cString: errorBuffer)
    if detail.isEmpty { detail = String(cString: curl_easy_strerror(code)) }

    guard code == CURLE_OK else {
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            throw HTTPTransportFailure(kind: .connectionFailed, detail: detail)
        case CURLE_OPERATION_TIMEDOUT:
            var connectTime = 0.0
            _ = signoff_curl_getinfo_double(handle, CURLINFO_CONNECT_TIME, &connectTime)
            throw HTTPTransportFailure(kind: connectTime > 0 ? .timeout : .connectTimeout, detail: detail)
        case CURLE_ABORTED_BY_CALLBACK,
             CURLE_WRITE_ERROR where sink != nil && cancel.isCancelled:
            throw HTTPTransportFailure(kind: .cancelled, detail: "the request was cancelled")
        case CURLE_WRITE_ERROR where state.tooLarge:
            throw HTTPTransportFailure(kind: .other, detail: "the response is larger than \(limit) bytes")
        default:
            throw HTTPTransportFailure(kind: .other, detail: detail)
        }
    }
    var status = 0
    _ = signoff_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
    return HTTPResponse(status: status, headers: state.headers, body: state.body)
}
