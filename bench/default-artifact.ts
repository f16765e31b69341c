/** The artifact the Worker bundles (model-artifacts/bundled.json), the default model for evaluation and benchmarks. */
export { artifactsRoot, defaultArtifactDir } from "../workers/origin/src/artifact-files.js";
