// ES module entry: re-exports the CommonJS build so `import { ... } from "tunekit"` works.
import cjs from "../dist/index.js";
export const { TunekitError, native } = cjs;
export default cjs;
