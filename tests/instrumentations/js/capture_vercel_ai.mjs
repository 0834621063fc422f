// Runs a short "session" through the Vercel AI SDK against the fake OpenAI server and
// exports every span with the plain OpenTelemetry JS SDK (NodeTracerProvider +
// SimpleSpanProcessor + OTLPTraceExporter over HTTP) to the loopback sink.
//
// Driven by capture_vercel_ai.py; env:
//   FAKE_OPENAI_BASE_URL  e.g. http://127.0.0.1:PORT/v1
//   OTLP_TRACES_URL       e.g. http://127.0.0.1:PORT/v1/traces
//   CAPTURE_MODE          v6 | v6-vercel-otel | v7 | v7-legacy
//
// v6:        ai@6, `experimental_telemetry: {isEnabled, functionId, metadata}`  -> ai.* spans
// v6-vercel-otel: same, but the OTel setup is @vercel/otel `registerOTel({serviceName})`
//            configured only through OTEL_EXPORTER_OTLP_ENDPOINT
// v7:        ai@7, registerTelemetry(new OpenTelemetry({runtimeContext: true}))  -> gen_ai.* spans,
//            session/user passed as runtimeContext + telemetry.includeRuntimeContext
// v7-legacy: ai@7, registerTelemetry(new LegacyOpenTelemetry())                  -> ai.* spans
// v6-agent / v7-agent: the telemetry of v6 / v7, but the agent session below instead: a
//            streamed multi-step tool run (streamText + tool + stopWhen, Responses API),
//            then a streamed Chat Completions turn with the tool still offered
import * as ai from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { trace } from '@opentelemetry/api';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';

const MODE = process.env.CAPTURE_MODE ?? 'v6';
const AGENT = MODE.endsWith('-agent');
const SESSION_ID = 'sess-1234';
const USER_ID = 'user-42';
const CHAT_MODEL = 'gpt-4o-mini';
const EMBED_MODEL = 'text-embedding-3-small';
const SYSTEM_PROMPT = 'You are a helpful weather assistant.';

let flush;
if (MODE === 'v6-vercel-otel') {
  // @vercel/otel picks its exporter from OTEL_EXPORTER_OTLP_* (set by the runner).
  const { registerOTel } = await import('@vercel/otel');
  registerOTel({ serviceName: `capture-vercel-ai-${MODE}` });
  flush = async () => {
    const tp = trace.getTracerProvider();
    const delegate = tp.getDelegate ? tp.getDelegate() : tp;
    await delegate.forceFlush?.();
    await delegate.shutdown?.();
  };
} else {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': `capture-vercel-ai-${MODE}` }),
    spanProcessors: [
      new SimpleSpanProcessor(new OTLPTraceExporter({ url: process.env.OTLP_TRACES_URL })),
    ],
  });
  provider.register();
  flush = async () => {
    await provider.forceFlush();
    await provider.shutdown();
  };
}

let telemetryFor;
if (MODE.startsWith('v6')) {
  telemetryFor = () => ({
    experimental_telemetry: {
      isEnabled: true,
      functionId: 'weather-agent',
      metadata: { sessionId: SESSION_ID, userId: USER_ID, tenant: 'acme' },
    },
  });
} else {
  const otel = await import('@ai-sdk/otel');
  ai.registerTelemetry(
    MODE === 'v7-legacy'
      ? new otel.LegacyOpenTelemetry()
      : new otel.OpenTelemetry({ runtimeContext: true }),
  );
  telemetryFor = () => ({
    runtimeContext: { sessionId: SESSION_ID, userId: USER_ID, tenant: 'acme', apiSecret: 'not-exported' },
    telemetry: {
      functionId: 'weather-agent',
      includeRuntimeContext: { sessionId: true, userId: true, tenant: true },
    },
  });
}

const stepCount = ai.isStepCount ?? ai.stepCountIs;
const openai = createOpenAI({ baseURL: process.env.FAKE_OPENAI_BASE_URL, apiKey: 'sk-fake' });

const getWeather = ai.tool({
  description: 'Get the current weather for a city',
  inputSchema: ai.jsonSchema({
    type: 'object',
    properties: { city: { type: 'string', description: 'City name' } },
    required: ['city'],
  }),
  execute: async ({ city }) => `Sunny, 21C in ${city}`,
});

const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];

if (AGENT) {
  // turn 1: streamed, multi-step: tool call -> tool -> answer (2 model calls, Responses API)
  const s1 = ai.streamText({
    model: openai(CHAT_MODEL),
    system: SYSTEM_PROMPT,
    messages,
    tools: { get_weather: getWeather },
    stopWhen: stepCount(3),
    ...telemetryFor(),
  });
  for await (const _ of s1.textStream);
  messages.push(...(await s1.response).messages);
  console.error('agent turn-1:', JSON.stringify(await s1.totalUsage));
  // turn 2: streamed Chat Completions, the tool offered again (already called: an answer)
  messages.push({ role: 'user', content: 'Thanks! And tomorrow?' });
  const s2 = ai.streamText({
    model: openai.chat(CHAT_MODEL),
    system: SYSTEM_PROMPT,
    messages,
    tools: { get_weather: getWeather },
    stopWhen: stepCount(3),
    ...telemetryFor(),
  });
  for await (const _ of s2.textStream);
  console.error('agent turn-2:', JSON.stringify(await s2.totalUsage));
  await flush();
  trace.disable();
  process.exit(0);
}

// turn 1: Responses API (the default `openai(model)`), tool call + tool result, non-streaming
const r1 = await ai.generateText({
  model: openai(CHAT_MODEL),
  system: SYSTEM_PROMPT,
  messages,
  tools: { get_weather: getWeather },
  stopWhen: stepCount(3),
  temperature: 0.2,
  ...telemetryFor(),
});
messages.push(...r1.response.messages);
console.error('turn-1:', JSON.stringify(r1.text), JSON.stringify(r1.totalUsage ?? r1.usage));

// turn 2: Responses API, streaming
messages.push({ role: 'user', content: 'Thanks! And tomorrow?' });
const r2 = ai.streamText({
  model: openai(CHAT_MODEL),
  system: SYSTEM_PROMPT,
  messages,
  ...telemetryFor(),
});
let text2 = '';
for await (const delta of r2.textStream) text2 += delta;
messages.push(...(await r2.response).messages);
console.error('turn-2:', JSON.stringify(text2), JSON.stringify(await r2.usage));

// turn 3: Chat Completions API (`openai.chat(model)`), non-streaming
const r3 = await ai.generateText({
  model: openai.chat(CHAT_MODEL),
  system: SYSTEM_PROMPT,
  prompt: 'Summarise the forecast in one line.',
  ...telemetryFor(),
});
console.error('turn-3:', JSON.stringify(r3.text), JSON.stringify(r3.usage));

// embeddings
const e = await ai.embedMany({
  model: openai.embedding(EMBED_MODEL),
  values: ['hello', 'world'],
  ...telemetryFor(),
});
console.error('embed:', e.embeddings.length, JSON.stringify(e.usage));

// a failing call (HTTP 400 from the fake)
try {
  await ai.generateText({
    model: openai('error-400'),
    prompt: 'fail please',
    maxRetries: 0,
    ...telemetryFor(),
  });
} catch (err) {
  console.error('error call failed as expected:', err?.name ?? err);
}

await flush();
trace.disable();
