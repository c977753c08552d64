// The whole verification flow against `otp serve --sandbox`, as a Java backend would run it.
//
// Java 11+ (written to Java 11's language level), no dependencies, no build: a single-file program (java.net.http.HttpClient, and a
// tiny JSON reader below for the service's small answers).
//
//     java VerifyFlow.java BASE_URL API_KEY SANDBOX_URL [MOBILE]
//
// or with OTP_BASE_URL, OTP_API_KEY, OTP_SANDBOX_URL (and OTP_MOBILE) in the environment.
// Exits 0 when every step answered as expected, 1 with a message on stderr otherwise.

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class VerifyFlow {
    static final class Deviation extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Deviation(String message) {
            super(message);
        }
    }

    static final class Answer {
        final int status;
        final String contentType;
        final Object body;
        final String raw;

        Answer(int status, String contentType, Object body, String raw) {
            this.status = status;
            this.contentType = contentType;
            this.body = body;
            this.raw = raw;
        }

        int status() {
            return status;
        }

        String contentType() {
            return contentType;
        }

        String raw() {
            return raw;
        }

        @SuppressWarnings("unchecked")
        Map<String, Object> object() {
            if (body instanceof Map) return (Map<String, Object>) body;
            throw new Deviation("expected a JSON object, got " + raw);
        }
    }

    // No proxy (HttpClient's default): these are loopback calls.
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    public static void main(String[] args) {
        try {
            run(args);
        } catch (Deviation deviation) {
            System.err.println("VerifyFlow.java: FAILED: " + deviation.getMessage());
            System.exit(1);
        }
    }

    static void run(String[] args) {
        String[] names = {"OTP_BASE_URL", "OTP_API_KEY", "OTP_SANDBOX_URL", "OTP_MOBILE"};
        if (args.length > names.length) {
            throw new Deviation("usage: java VerifyFlow.java BASE_URL API_KEY SANDBOX_URL [MOBILE]");
        }
        String[] values = new String[names.length];
        List<String> missing = new ArrayList<>();
        for (int i = 0; i < names.length; i++) {
            String value = i < args.length ? args[i] : System.getenv(names[i]);
            values[i] = value == null ? "" : value;
        }
        if (values[3].isEmpty()) values[3] = "9876543210";
        for (int i = 0; i < names.length; i++) if (values[i].isEmpty()) missing.add(names[i]);
        if (!missing.isEmpty()) {
            throw new Deviation("missing " + String.join(", ", missing)
                    + " (usage: java VerifyFlow.java BASE_URL API_KEY SANDBOX_URL [MOBILE], or set OTP_BASE_URL, "
                    + "OTP_API_KEY, OTP_SANDBOX_URL)");
        }
        String base = values[0].replaceAll("/+$", "");
        String key = values[1];
        String sandbox = values[2].replaceAll("/+$", "");
        String mobile = values[3];

        // 1. Start a verification: the service sends the OTP through the (sandbox) gateway.
        Answer answer = call("POST", base + "/v1/verifications", key,
                "{\"gateway\":\"phonepe\",\"to\":" + quote(mobile) + ",\"client_ip\":\"203.0.113.7\"}");
        expect(answer.status() == 201, "start: expected HTTP 201, got " + answer.status(), answer);
        expect("pending".equals(answer.object().get("status")), "start: expected status pending", answer);
        Object id = answer.object().get("id");
        expect(id instanceof String && !((String) id).isEmpty(), "start: expected an id", answer);
        System.out.println("started " + id + ": pending, tries_left " + number(answer.object().get("tries_left")));
        String path = base + "/v1/verifications/" + URLEncoder.encode((String) id, StandardCharsets.UTF_8);

        // 2. The code the end user would have received: the sandbox's inbox, newest first.
        answer = call("GET", sandbox + "/__sandbox/otps?mobile=" + URLEncoder.encode(mobile, StandardCharsets.UTF_8),
                null, null);
        Object otps = answer.status() == 200 ? answer.object().get("otps") : null;
        expect(otps instanceof List && !((List<?>) otps).isEmpty(),
                "sandbox inbox: expected HTTP 200 with an OTP, got " + answer.status(), answer);
        Object newest = ((List<?>) otps).get(0);
        Object code = newest instanceof Map ? ((Map<?, ?>) newest).get("otp") : null;
        expect(code instanceof String && ((String) code).matches("\\d+"), "sandbox inbox: expected a numeric otp", answer);
        String right = (String) code;
        System.out.println("sandbox inbox: code " + right);

        // 3. A wrong code: a problem (RFC 9457) 422 wrong_otp, one try fewer.
        String wrong = right.substring(0, right.length() - 1) + (right.endsWith("0") ? "1" : "0");
        answer = call("POST", path + "/check", key, "{\"code\":" + quote(wrong) + "}");
        expect(answer.status() == 422, "wrong code: expected HTTP 422, got " + answer.status(), answer);
        String mediaType = answer.contentType().split(";")[0].trim();
        expect(mediaType.equals("application/problem+json"),
                "wrong code: expected Content-Type application/problem+json, got \"" + answer.contentType() + "\"", answer);
        expect("wrong_otp".equals(answer.object().get("code")), "wrong code: expected code wrong_otp", answer);
        expect("4".equals(number(answer.object().get("tries_left"))), "wrong code: expected tries_left 4", answer);
        System.out.println("wrong code: 422 wrong_otp, tries_left 4");

        // 4. The right code: approved.
        answer = call("POST", path + "/check", key, "{\"code\":" + quote(right) + "}");
        expect(answer.status() == 200, "right code: expected HTTP 200, got " + answer.status(), answer);
        expect("approved".equals(answer.object().get("status")), "right code: expected status approved", answer);
        System.out.println("right code: 200 approved");

        // 5. The status, read again.
        answer = call("GET", path, key, null);
        expect(answer.status() == 200, "status: expected HTTP 200, got " + answer.status(), answer);
        expect("approved".equals(answer.object().get("status")), "status: expected approved", answer);
        System.out.println("status: approved");
        System.out.println("ok: java flow passed");
    }

    /** One request; 4xx/5xx are answers too. The body must be JSON. */
    static Answer call(String method, String url, String key, String json) {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(30))
                .header("Accept", "application/json")
                .method(method, json == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(json, StandardCharsets.UTF_8));
        if (key != null) request.header("Authorization", "Bearer " + key);
        if (json != null) request.header("Content-Type", "application/json");
        HttpResponse<String> response;
        try {
            response = HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        } catch (IOException error) {
            throw new Deviation(method + " " + url + ": no answer: " + error);
        } catch (InterruptedException error) {
            Thread.currentThread().interrupt();
            throw new Deviation(method + " " + url + ": interrupted");
        }
        String raw = response.body();
        Object body;
        try {
            body = new Json(raw).document();
        } catch (IllegalArgumentException error) {
            String head = raw.length() > 300 ? raw.substring(0, 300) : raw;
            throw new Deviation(method + " " + url + ": HTTP " + response.statusCode() + ", body is not JSON ("
                    + error.getMessage() + "): " + head);
        }
        String contentType = response.headers().firstValue("Content-Type").orElse("");
        return new Answer(response.statusCode(), contentType, body, raw);
    }

    static void expect(boolean condition, String message, Answer answer) {
        if (!condition) throw new Deviation(message + "; got " + answer.raw());
    }

    /** A JSON number as its integer text ("4"), or null when it is not a whole number. */
    static String number(Object value) {
        if (!(value instanceof Double)) return null;
        double d = (Double) value;
        return d == Math.rint(d) ? Long.toString((long) d) : null;
    }

    static String quote(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            if (c == '"' || c == '\\') out.append('\\').append(c);
            else if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
            else out.append(c);
        }
        return out.append('"').toString();
    }

    /** A tiny JSON reader: objects (as Map), arrays (List), strings, numbers (Double), booleans, null. */
    static final class Json {
        private final String text;
        private int at;

        Json(String text) {
            this.text = text;
        }

        Object document() {
            Object value = value();
            space();
            if (at != text.length()) throw fail("trailing characters");
            return value;
        }

        private Object value() {
            space();
            if (at >= text.length()) throw fail("unexpected end");
            char c = text.charAt(at);
            switch (c) {
                case '{': return object();
                case '[': return array();
                case '"': return string();
                case 't': return literal("true", Boolean.TRUE);
                case 'f': return literal("false", Boolean.FALSE);
                case 'n': return literal("null", null);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) return number();
                    throw fail("unexpected '" + c + "'");
            }
        }

        private Map<String, Object> object() {
            Map<String, Object> map = new LinkedHashMap<>();
            at++; // {
            space();
            if (peek('}')) return map;
            do {
                space();
                String name = string();
                space();
                take(':');
                map.put(name, value());
                space();
            } while (optional(','));
            take('}');
            return map;
        }

        private List<Object> array() {
            List<Object> list = new ArrayList<>();
            at++; // [
            space();
            if (peek(']')) return list;
            do {
                list.add(value());
                space();
            } while (optional(','));
            take(']');
            return list;
        }

        private String string() {
            take('"');
            StringBuilder out = new StringBuilder();
            while (true) {
                if (at >= text.length()) throw fail("unterminated string");
                char c = text.charAt(at++);
                if (c == '"') return out.toString();
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                if (at >= text.length()) throw fail("unterminated escape");
                char e = text.charAt(at++);
                switch (e) {
                    case '"': case '\\': case '/': out.append(e); break;
                    case 'b': out.append('\b'); break;
                    case 'f': out.append('\f'); break;
                    case 'n': out.append('\n'); break;
                    case 'r': out.append('\r'); break;
                    case 't': out.append('\t'); break;
                    case 'u':
                        if (at + 4 > text.length()) throw fail("short \\u escape");
                        try {
                            out.append((char) Integer.parseInt(text.substring(at, at + 4), 16));
                        } catch (NumberFormatException error) {
                            throw fail("bad \\u escape");
                        }
                        at += 4;
                        break;
                    default: throw fail("bad escape \\" + e);
                }
            }
        }

        private Double number() {
            int start = at;
            while (at < text.length() && "+-0123456789.eE".indexOf(text.charAt(at)) >= 0) at++;
            try {
                return Double.valueOf(text.substring(start, at));
            } catch (NumberFormatException error) {
                throw fail("bad number");
            }
        }

        private Object literal(String word, Object value) {
            if (!text.startsWith(word, at)) throw fail("unexpected token");
            at += word.length();
            return value;
        }

        private void space() {
            while (at < text.length() && " \t\r\n".indexOf(text.charAt(at)) >= 0) at++;
        }

        private boolean peek(char c) {
            if (at < text.length() && text.charAt(at) == c) {
                at++;
                return true;
            }
            return false;
        }

        private boolean optional(char c) {
            space();
            return peek(c);
        }

        private void take(char c) {
            if (!peek(c)) throw fail("expected '" + c + "'");
        }

        private IllegalArgumentException fail(String why) {
            return new IllegalArgumentException(why + " at offset " + at);
        }
    }
}
