import BatonProtocol
import CNghttp2
import NIOCore

/// What a server-side HTTP/2 session reports while it reads: the parts of each request.
protocol NGHTTP2SessionDelegate: AnyObject {
    /// A request's HEADERS began on a new stream.
    func streamOpened(_ id: Int32)
    /// One header field of the request on `id`. Returns false to end the session with
    /// PROTOCOL_ERROR (headers over the limit).
    func header(_ id: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool
    /// The request's header block is complete.
    func headersEnded(_ id: Int32)
    /// Body bytes of the request on `id`, valid only during the call.
    func body(_ id: Int32, _ bytes: UnsafeRawBufferPointer)
    /// The peer ended its side of the stream: the request is complete.
    func requestEnded(_ id: Int32)
    /// The stream is gone: answered and ended on both sides, or reset (by the peer or by nghttp2).
    func streamClosed(_ id: Int32, errorCode: UInt32)
}

/// A server-side `nghttp2_session`: the C boundary of Baton's HTTP/2, and all of it.
///
/// libnghttp2 owns the connection's state machines, HPACK, flow control (it counts every window,
/// sends WINDOW_UPDATE for what this class reports consumed, and answers a peer that overruns a
/// window), stream limits and the errors of the protocol. This class feeds it bytes (`receive`), collects the bytes it wants written (`drain`),
/// and hands it answers (`respond`, `goAway`).
///
/// Memory and threads:
/// - Everything runs on the connection's event loop; nghttp2 calls back only from inside `receive`,
///   `drain` and the `submit` calls this class makes, on that thread.
/// - `user_data` is this object, unretained: nghttp2 can only call back while one of this object's
///   methods runs, so it is alive; `deinit` deletes the session, after which nothing calls back.
/// - Received bytes are borrowed for the length of `nghttp2_session_mem_recv`; nghttp2 copies what it
///   keeps. Header and body pointers handed to callbacks are valid only during the callback, and the
///   delegate copies what it keeps.
/// - `nghttp2_session_mem_send` returns a pointer into nghttp2's own buffer, valid until the next
///   call; `drain` copies it into the outgoing buffer at once.
/// - `respond` passes header names and values that nghttp2 copies before `nghttp2_submit_response`
///   returns. The body stays here (`answerBytes`) until nghttp2's data callback has copied all of it.
final class NGHTTP2Session {
    private var session: OpaquePointer?
    unowned let delegate: any NGHTTP2SessionDelegate
    /// The bytes of the answer bodies not yet handed to nghttp2, one after another; cleared (its
    /// storage kept) whenever none is left, so answers allocate nothing.
    private var answerBytes = ByteBuffer()
    /// Where each stream's answer body is in `answerBytes`: its unread part.
    private var bodies: [Int32: (offset: Int, count: Int)] = [:]
    /// The text of an answer's header fields, and each field's name and value lengths (kept between
    /// answers for their storage).
    private var headerText: [UInt8] = []
    private var fieldLengths: [(name: Int, value: Int)] = []

    /// A server session that sends `settings` first (`NGHTTP2_SETTINGS_*` id, value).
    init(delegate: any NGHTTP2SessionDelegate, settings: [(id: Int32, value: UInt32)]) {
        self.delegate = delegate
        var callbacks: OpaquePointer?
        precondition(nghttp2_session_callbacks_new(&callbacks) == 0, "nghttp2: out of memory")
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, Self.onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, Self.onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, Self.onFrameRecv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, Self.onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, Self.onStreamClose)
        // Windows are refilled by hand (`onDataChunk`): the connection's as bodies arrive, a stream's
        // never (its initial window holds the largest body accepted; PROTOCOL.md §12).
        var options: OpaquePointer?
        precondition(nghttp2_option_new(&options) == 0, "nghttp2: out of memory")
        defer { nghttp2_option_del(options) }
        nghttp2_option_set_no_auto_window_update(options, 1)
        let userData = Unmanaged.passUnretained(self).toOpaque()
        precondition(nghttp2_session_server_new2(&session, callbacks, userData, options) == 0, "nghttp2: out of memory")
        var entries = settings.map { nghttp2_settings_entry(settings_id: $0.id, value: $0.value) }
        let rv = nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
        precondition(rv == 0, "nghttp2_submit_settings: \(Self.describe(Int(rv)))")
    }

    deinit {
        nghttp2_session_del(session)
    }

    /// Feeds received bytes. Returns nil, or the error that ends the session (a bad preface,
    /// flooding); then `drain` may still hold a GOAWAY to write before closing.
    func receive(_ buffer: ByteBuffer) -> String? {
        let rv = buffer.withUnsafeReadableBytes { bytes in
            nghttp2_session_mem_recv(session, bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count)
        }
        guard rv < 0 else { return nil }
        _ = nghttp2_session_terminate_session(session, UInt32(NGHTTP2_PROTOCOL_ERROR.rawValue))
        return Self.describe(rv)
    }

    /// Appends everything nghttp2 wants to write. Returns false on a fatal error (out of memory).
    @discardableResult
    func drain(into out: inout ByteBuffer) -> Bool {
        while true {
            var data: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &data)
            if n < 0 { return false }
            guard n > 0, let data else { return true }
            out.writeBytes(UnsafeRawBufferPointer(start: data, count: n))
        }
    }

    /// Whether the session still reads or writes: false once a GOAWAY went out and the streams are done.
    var isAlive: Bool {
        nghttp2_session_want_read(session) != 0 || nghttp2_session_want_write(session) != 0
    }

    /// Queues the answer on stream `id`, ending the stream: `:status`, `content-type`,
    /// `content-length`, then `headers`, and the body `writeBody` appends.
    func respond(
        _ id: Int32, status: Int, headers: [(name: String, value: String)], body writeBody: (inout ByteBuffer) -> Void
    ) {
        let offset = answerBytes.writerIndex
        writeBody(&answerBytes)
        let count = answerBytes.writerIndex - offset
        bodies[id] = (offset, count)

        headerText.removeAll(keepingCapacity: true)
        fieldLengths.removeAll(keepingCapacity: true)
        field(Self.statusName, digits: status)
        field(Self.contentTypeName, Self.contentTypeValue)
        field(Self.contentLengthName, digits: count)
        for h in headers { field(Array(h.name.utf8), Array(h.value.utf8)) }
        // nghttp2 copies every name and value before nghttp2_submit_response returns.
        let rv = headerText.withUnsafeMutableBufferPointer { text in
            withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: fieldLengths.count) { nva -> Int32 in
                var at = text.baseAddress!
                for (i, lengths) in fieldLengths.enumerated() {
                    nva[i] = nghttp2_nv(
                        name: at, value: at + lengths.name, namelen: lengths.name, valuelen: lengths.value,
                        flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
                    at += lengths.name + lengths.value
                }
                var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: Self.readBody)
                return nghttp2_submit_response(session, id, nva.baseAddress, fieldLengths.count, &provider)
            }
        }
        if rv != 0 { forgetBody(id) }  // the stream is gone (reset meanwhile): nothing to send
    }

    private func field(_ name: [UInt8], _ value: [UInt8]) {
        headerText += name
        headerText += value
        fieldLengths.append((name.count, value.count))
    }

    private func field(_ name: [UInt8], digits n: Int) {
        headerText += name
        let start = headerText.count
        var n = n
        repeat {
            headerText.append(UInt8(ascii: "0") + UInt8(n % 10))
            n /= 10
        } while n > 0
        headerText[start...].reverse()
        fieldLengths.append((name.count, headerText.count - start))
    }

    private func forgetBody(_ id: Int32) {
        bodies[id] = nil
        if bodies.isEmpty { answerBytes.clear() }
    }

    private static let statusName = Array(":status".utf8)
    private static let contentTypeName = Array("content-type".utf8)
    private static let contentTypeValue = Array(HTTP2Route.contentType.utf8)
    private static let contentLengthName = Array("content-length".utf8)

    /// Queues GOAWAY (`NO_ERROR`) naming the newest stream a request came in on.
    func goAway() {
        let last = nghttp2_session_get_last_proc_stream_id(session)
        _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, UInt32(NGHTTP2_NO_ERROR.rawValue), nil, 0)
    }

    /// Ends the session with GOAWAY and `errorCode` (an `NGHTTP2_*` error code).
    func terminate(_ errorCode: nghttp2_error_code) {
        _ = nghttp2_session_terminate_session(session, UInt32(errorCode.rawValue))
    }

    static func describe(_ rv: Int) -> String {
        String(cString: nghttp2_strerror(Int32(rv)))
    }

    // MARK: Callbacks (C function pointers: no captures; `user_data` is the session object)

    private static func this(_ userData: UnsafeMutableRawPointer?) -> NGHTTP2Session {
        Unmanaged<NGHTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
    }

    private static let onBeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, userData in
        guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
            frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
        else { return 0 }
        this(userData).delegate.streamOpened(frame.pointee.hd.stream_id)
        return 0
    }

    private static let onHeader: nghttp2_on_header_callback = { session, frame, name, nameLength, value, valueLength, _, userData in
        guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
        let ok = this(userData).delegate.header(
            frame.pointee.hd.stream_id, name: UnsafeRawBufferPointer(start: name, count: nameLength),
            value: UnsafeRawBufferPointer(start: value, count: valueLength))
        if !ok { _ = nghttp2_session_terminate_session(session, UInt32(NGHTTP2_PROTOCOL_ERROR.rawValue)) }
        return 0
    }

    private static let onFrameRecv: nghttp2_on_frame_recv_callback = { _, frame, userData in
        guard let frame else { return 0 }
        let delegate = this(userData).delegate
        let id = frame.pointee.hd.stream_id
        let endStream = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(frame.pointee.hd.type) {
        case NGHTTP2_HEADERS.rawValue:
            guard frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST else { return 0 }
            delegate.headersEnded(id)
            if endStream { delegate.requestEnded(id) }
        case NGHTTP2_DATA.rawValue:
            if endStream { delegate.requestEnded(id) }
        default:
            break
        }
        return 0
    }

    private static let onDataChunk: nghttp2_on_data_chunk_recv_callback = { session, _, id, data, length, userData in
        this(userData).delegate.body(id, UnsafeRawBufferPointer(start: data, count: length))
        // The connection's window comes back (WINDOW_UPDATE once half of it is used); the stream's
        // does not, so DATA past it is a stream error that nghttp2 answers with RST_STREAM.
        return nghttp2_session_consume_connection(session, length)
    }

    private static let onStreamClose: nghttp2_on_stream_close_callback = { _, id, errorCode, userData in
        let this = this(userData)
        this.forgetBody(id)
        this.delegate.streamClosed(id, errorCode: errorCode)
        return 0
    }

    /// Copies the next part of the answer body on `id` into nghttp2's `buffer`; EOF with the last.
    private static let readBody: nghttp2_data_source_read_callback = { _, id, buffer, length, flags, _, userData in
        let this = this(userData)
        guard let body = this.bodies[id], let buffer else {
            flags?.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
            return 0
        }
        let n = min(length, body.count)
        if n > 0 {
            this.answerBytes.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress! + body.offset, byteCount: n)
            }
        }
        if n == body.count {
            flags?.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
            this.forgetBody(id)
        } else {
            this.bodies[id] = (body.offset + n, body.count - n)
        }
        return n
    }
}
