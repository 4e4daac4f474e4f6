// Calls made in the same event-loop turn (the tasks of one claim start in one turn) answered by
// one batched call, made with setImmediate once the turn is over: no waiting window, so a lone
// call goes at once. Each caller gets its own answer; if the batched call fails, every caller
// of that batch gets its error.
export function batchByTurn<I, O>(run: (inputs: I[]) => Promise<O[]>): (input: I) => Promise<O> {
  let waiting: { input: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  return (input) =>
    new Promise<O>((resolve, reject) => {
      waiting.push({ input, resolve, reject });
      if (waiting.length > 1) return;
      setImmediate(() => {
        const batch = waiting;
        waiting = [];
        run(batch.map((w) => w.input)).then(
          (outputs) => batch.forEach((w, i) => w.resolve(outputs[i]!)),
          (err: unknown) => batch.forEach((w) => w.reject(err)),
        );
      });
    });
}
