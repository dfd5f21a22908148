// What a handler of an event other than a request is given, as on Workers: a `scheduled`
// handler's `ScheduledController`; a `queue` handler's `MessageBatch` of `Message`s, and the
// `QueueOutcome` of its decisions that `host.js` reports back.
import { core, primordials } from "ext:core/mod.js";

const {
  ArrayPrototypeMap,
  ArrayPrototypePush,
  JSONParse,
  JSONStringify,
  MapPrototypeHas,
  MapPrototypeSet,
  NumberIsFinite,
  RangeError,
  SafeMap,
  TypedArrayPrototypeGetBuffer,
} = primordials;
const { op_edge_event_body } = core.ops;

/** What a `queue` handler decides, reported to the host when it settles. */
export class QueueOutcome {
  #decided = new SafeMap();
  acks = [];
  retries = [];
  ackAll = false;
  retryAll = false;
  retryAllDelay = null;
  #batchDecided = false;

  ack(id) {
    if (MapPrototypeHas(this.#decided, id)) return;
    MapPrototypeSet(this.#decided, id, true);
    ArrayPrototypePush(this.acks, id);
  }
  retry(id, delaySeconds) {
    const delay = checkDelay(delaySeconds);
    if (MapPrototypeHas(this.#decided, id)) return;
    MapPrototypeSet(this.#decided, id, true);
    ArrayPrototypePush(this.retries, [id, delay]);
  }
  ackEvery() {
    if (this.#batchDecided) return;
    this.#batchDecided = true;
    this.ackAll = true;
  }
  retryEvery(delaySeconds) {
    const delay = checkDelay(delaySeconds);
    if (this.#batchDecided) return;
    this.#batchDecided = true;
    this.retryAll = true;
    this.retryAllDelay = delay;
  }
  /** The decisions as JSON for the host, with why the handler failed if it did; never throws (the values were checked as made). */
  report(errorText = null) {
    return JSONStringify({
      acks: this.acks,
      retries: this.retries,
      ackAll: this.ackAll,
      retryAll: this.retryAll,
      retryAllDelay: this.retryAllDelay,
      error: errorText,
    });
  }
}

/** A `delaySeconds` option: null when absent, else a number of seconds from 0 to 24 hours. */
function checkDelay(delaySeconds) {
  if (delaySeconds === undefined || delaySeconds === null) return null;
  if (typeof delaySeconds !== "number" || !NumberIsFinite(delaySeconds) || delaySeconds < 0 || delaySeconds > 86400) {
    throw new RangeError("delaySeconds must be a number of seconds from 0 to 86400 (24 hours)");
  }
  return delaySeconds;
}

/** A delivered message, as Workers' `Message`. */
class QueueMessage {
  #id;
  #timestamp;
  #body;
  #attempts;
  #outcome;
  constructor(id, timestamp, body, attempts, outcome) {
    this.#id = id;
    this.#timestamp = timestamp;
    this.#body = body;
    this.#attempts = attempts;
    this.#outcome = outcome;
  }
  get id() {
    return this.#id;
  }
  get timestamp() {
    return new Date(this.#timestamp);
  }
  get body() {
    // A body that could not be decoded throws here, for this message only: the handler can
    // still ack or retry it, and the rest of its batch runs.
    if (this.#body instanceof BodyError) throw this.#body.error;
    return this.#body;
  }
  get attempts() {
    return this.#attempts;
  }
  ack() {
    this.#outcome.ack(this.#id);
  }
  retry(options = undefined) {
    this.#outcome.retry(this.#id, options?.delaySeconds);
  }
}

/** A batch of messages, as Workers' `MessageBatch`. */
export class MessageBatch {
  #queue;
  #messages;
  #outcome;
  constructor(queue, messages, outcome) {
    this.#queue = queue;
    this.#messages = messages;
    this.#outcome = outcome;
  }
  get queue() {
    return this.#queue;
  }
  get messages() {
    return this.#messages;
  }
  ackAll() {
    this.#outcome.ackEvery();
  }
  retryAll(options = undefined) {
    this.#outcome.retryEvery(options?.delaySeconds);
  }
}

/** A message body as its producer sent it. */
function decodeBody(bytes, contentType) {
  switch (contentType) {
    case "text":
      return core.decode(bytes);
    case "bytes":
      return TypedArrayPrototypeGetBuffer(bytes);
    case "v8":
      return core.deserialize(bytes);
    default:
      return JSONParse(core.decode(bytes));
  }
}

/** A message body that could not be decoded, and why. */
class BodyError {
  constructor(error) {
    this.error = error;
  }
}

/** The batch of queue event `id` for its handler. */
export function queueBatch(ev, id, outcome) {
  let i = 0;
  const messages = ArrayPrototypeMap(ev.messages, (m) => {
    const bytes = op_edge_event_body(id, i++);
    let body;
    try {
      body = decodeBody(bytes, m.contentType);
    } catch (err) {
      body = new BodyError(err);
    }
    return new QueueMessage(m.id, m.timestamp, body, m.attempts, outcome);
  });
  return new MessageBatch(ev.queue, messages, outcome);
}

/** What a `scheduled` handler is given first, as on Workers. */
export class ScheduledController {
  #cron;
  #scheduledTime;
  constructor(cron, scheduledTime) {
    this.#cron = cron;
    this.#scheduledTime = scheduledTime;
  }
  get cron() {
    return this.#cron;
  }
  get scheduledTime() {
    return this.#scheduledTime;
  }
  get type() {
    return "scheduled";
  }
  noRetry() {
    // Retries of failed cron runs are not made on edge; accepted for compatibility.
  }
}
