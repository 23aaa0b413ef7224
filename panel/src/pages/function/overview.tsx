// The overview tab: versions, upload and deploy, history, and the try-it form.
import { useRef, useState } from "preact/hooks";
import type { Api, Deployment, Fn, Version } from "../../api";
import { bytes, deployed, time } from "../../format";
import { DataTable, ErrorNote, Section, useAction, useLoad } from "../../ui/common";
import { TryIt } from "./try_it";

export function Overview({ api, fn, reload }: { api: Api; fn: Fn; reload: () => void }) {
  const versions = useLoad(() => api.versions(fn.name), [fn.name, fn.updated_at, fn.deployment?.id]);
  const history = useLoad(() => api.deployments(fn.name), [fn.name, fn.deployment?.id]);
  const [file, setFile] = useState<File | null>(null);
  const uploadForm = useRef<HTMLFormElement>(null);
  const [progress, setProgress] = useState<[number, number] | null>(null);
  const upload = useAction();
  const change = useAction();
  const deployFile = () =>
    upload.run(async () => {
      if (!file) return;
      const v = await api.uploadVersion(fn.name, file, (sent, total) => setProgress([sent, total]));
      await api.deploy(fn.name, v.number);
      // Clear the chosen file too, so the next deploy starts from a blank form.
      uploadForm.current?.reset();
      setFile(null);
      reload();
    });
  const live = fn.deployment;
  return (
    <>
      <Section title="Call it">
        <p class="mono">{fn.url}/</p>
        <p>
          {deployed(live)} · {fn.visibility}
        </p>
      </Section>
      <TryIt api={api} fn={fn} />
      <Section title="Deploy a new version">
        <form
          class="inline"
          ref={uploadForm}
          onSubmit={(e) => {
            e.preventDefault();
            void deployFile();
          }}
        >
          <label>
            Module (.wasm)
            <input type="file" name="module" accept=".wasm,application/wasm" required onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
          </label>
          <button type="submit" disabled={upload.busy || !file}>
            {upload.busy ? "Deploying…" : "Upload and deploy"}
          </button>
        </form>
        {progress ? (
          <p>
            <progress max={progress[1]} value={progress[0]} aria-label="Upload progress" /> {bytes(progress[0])} of {bytes(progress[1])}
          </p>
        ) : null}
        <ErrorNote error={upload.error} />
      </Section>
      <Section title="Versions">
        <ErrorNote error={versions.error ?? change.error} />
        <DataTable
          head={["Version", "sha256", "Size", "ABI", "Uploaded", ""]}
          rows={versions.data?.items}
          empty="No versions yet."
          row={(v: Version) => (
            <tr key={v.id}>
              <td>v{v.number}</td>
              <td class="mono">{v.sha256.slice(0, 12)}</td>
              <td>{bytes(v.size_bytes)}</td>
              <td>{v.abi}</td>
              <td>{time(v.created_at)}</td>
              <td>
                {live?.version === v.number ? (
                  <strong>live</strong>
                ) : (
                  <button
                    disabled={change.busy}
                    onClick={() =>
                      void change.run(async () => {
                        await api.rollback(fn.name, v.number);
                        reload();
                      })
                    }
                  >
                    {live && v.number < live.version ? "Roll back to this" : "Deploy this"}
                  </button>
                )}
              </td>
            </tr>
          )}
        />
      </Section>
      <Section title="Deployment history">
        <ErrorNote error={history.error} />
        {history.data ? (
          <ol class="history">
            {history.data.items.map((d: Deployment) => (
              <li key={d.id}>
                {time(d.created_at)}: {d.kind === "rollback" ? "rolled back to" : "deployed"} v{d.version}
                {d.canary_version ? ` (+ v${d.canary_version} at ${d.canary_percent}%)` : ""}
                {d.active ? " · live" : ""}
              </li>
            ))}
          </ol>
        ) : null}
      </Section>
    </>
  );
}
