// The Vercel AI SDK's default OpenAI provider, whose models speak the Responses API, pointed at the gateway.
// Usage: EDGE_BASE_URL=http://host:port/v1 EDGE_API_KEY=sk-edge-... EDGE_MODEL=name node check.mjs
// Prints one JSON line: what generateText and streamText returned, for the Python test to judge.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";

const openai = createOpenAI({ baseURL: process.env.EDGE_BASE_URL, apiKey: process.env.EDGE_API_KEY });
const model = openai(process.env.EDGE_MODEL);

const generated = await generateText({ model, prompt: "hello there friend", maxRetries: 0 });
const streamed = streamText({ model, prompt: "hello there friend", maxRetries: 0 });
const deltas = [];
for await (const delta of streamed.textStream) {
  deltas.push(delta);
}

console.log(JSON.stringify({
  generated: { text: generated.text, usage: generated.usage, finishReason: generated.finishReason,
               responseId: generated.response.id },
  streamed: { text: await streamed.text, deltas: deltas.length, usage: await streamed.usage,
              finishReason: await streamed.finishReason },
}));
