/** @type {import('jest').Config} */
module.exports = {
  preset: "ts-jest",
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts", "**/*.test.mjs", "**/*.test.cjs"],
  moduleFileExtensions: ["ts", "js", "mjs", "cjs", "json"],
  transform: {
    "^.+\\.ts$": ["ts-jest", { diagnostics: { warnOnly: false } }],
    // hyparquet (the Parquet reader) ships only ES modules; jest runs CommonJS here, so they are compiled.
    "/node_modules/hyparquet(-writer)?/.+\\.js$": ["ts-jest", { tsconfig: { allowJs: true, checkJs: false, isolatedModules: true }, diagnostics: false }],
  },
  transformIgnorePatterns: ["/node_modules/(?!(hyparquet|hyparquet-writer)/)"],
  testTimeout: 120000,
};
