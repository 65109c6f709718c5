// OTLP export of the request spans, with the OpenTelemetry SDK. trace.ts
// loads it only when OTEL_EXPORTER_OTLP_ENDPOINT is set (e.g.
// http://otel-collector:4318): each request is then a server span sent over
// OTLP/HTTP, with the ids of its traceparent. The exporter reads the other
// OTEL_EXPORTER_OTLP_* variables too; OTEL_SERVICE_NAME names the service
// (default: package.json's name, the workload's).
import * as api from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { Trace } from './trace';

export interface Spans {
  /** startSpan starts the span of a request in trace; the function it returns ends it with the answer's status. */
  startSpan(trace: Trace, name: string, attributes: api.Attributes): (status: number) => void;
  /** shutdown flushes the spans not sent yet. */
  shutdown(): Promise<void>;
}

export function setupOTLP({ serviceName }: { serviceName: string }): Spans {
  let next: Trace | undefined; // the trace whose span is being started: its ids are the span's
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    idGenerator: { generateTraceId: () => next!.traceId, generateSpanId: () => next!.spanId },
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
      let span: api.Span;
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
