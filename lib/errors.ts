/** Every error tunekit throws on purpose is a TunekitError; the message names what was wrong and what was expected. */
export class TunekitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TunekitError";
  }
}
