'use strict';
// OTLP export of the request spans, with the OpenTelemetry SDK. trace.js
// loads it only when OTEL_EXPORTER_OTLP_ENDPOINT is set (e.g.
// http://otel-collector:4318): each request is then a server span sent over
// OTLP/HTTP, with the ids of its traceparent. The exporter reads the other
// OTEL_EXPORTER_OTLP_* variables too; OTEL_SERVICE_NAME names the service
// (default: package.json's name, the workload's).
const api = require('@opentelemetry/api');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');

// setupOTLP returns startSpan(trace, name, attributes), which starts the
// span of a request and returns its end(status), and shutdown(), which
// flushes the spans not sent yet.
function setupOTLP({ serviceName }) {
  let next; // the trace whose span is being started: its ids are the span's
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    idGenerator: { generateTraceId: () => next.traceId, generateSpanId: () => next.spanId },
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  const tracer = provider.getTracer(serviceName);
  return {
    startSpan(trace, name, attributes) {
      let ctx = api.ROOT_CONTEXT;
      if (trace.parentId) {
        ctx = api.trace.setSpanContext(ctx, {
          traceId: trace.traceId,
          spanId: trace.parentId,
          traceFlags: parseInt(trace.flags, 16) & 1,
          isRemote: true,
        });
      }
      next = trace;
      let span;
      try {
        span = tracer.startSpan(name, { kind: api.SpanKind.SERVER, attributes }, ctx);
      } finally {
        next = undefined;
      }
      return (status) => {
        span.setAttribute('http.response.status_code', status);
        if (status >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR });
        span.end();
      };
    },
    shutdown: () => provider.shutdown(),
  };
}

module.exports = { setupOTLP };
