/** @type {import('jest').Config} */
module.exports = {
  preset: "ts-jest",
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts", "**/*.test.mjs", "**/*.test.cjs"],
  moduleFileExtensions: ["ts", "js", "mjs", "cjs", "json"],
  transform: { "^.+\\.ts$": ["ts-jest", { diagnostics: { warnOnly: false } }] },
  testTimeout: 120000,
};
