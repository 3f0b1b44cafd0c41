/* The worker's task: preview, instructions, practice, trials, questionnaire, submission.
 *
 * All the page knows about the task is the task-data JSON: opaque trial ids, image URLs by
 * screen position, and the answers of practice trials only. It never judges a test trial;
 * correctness is computed later from the answer key, which never reaches the page.
 *
 * What one trial looks like and how it is answered belongs to its trial type: each type of
 * the task contributes a script (crowdkit/trials/<type>/trial.js) that runs here, with the
 * helpers below in scope, and returns how to build, run and give feedback on its trials.
 */
"use strict";
(() => {
  const data = JSON.parse(document.getElementById("task-data").textContent);
  const settings = data.settings;
  const params = new URLSearchParams(window.location.search);
  const assignmentId = params.get("assignmentId") || "";
  const previewing = assignmentId === "" || assignmentId === "ASSIGNMENT_ID_NOT_AVAILABLE";
  const DEFAULT_TYPE = {{ default_type | tojson }};

  const byId = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
  const bounded = (x, low, high) => (x < low ? low : x > high ? high : x);
  const clicked = (button) =>
    new Promise((resolve) => button.addEventListener("click", () => resolve(), { once: true }));

  /* Image URLs. The JSON packs every key's digest bytes, in base64, in screen order: per
   * trial the left references, the right references, the top query, the bottom query. */
  function decodeImageUrls() {
    const raw = atob(data.keys);
    const urls = [];
    for (let i = 0; (i + 1) * data.bytes <= raw.length; i++) {
      let hex = "";
      for (let j = i * data.bytes; j < (i + 1) * data.bytes; j++) {
        hex += raw.charCodeAt(j).toString(16).padStart(2, "0");
      }
      const ext = data.ext[data.exti ? Number(data.exti[i]) : 0];
      urls.push(data.base + hex + "." + ext);
    }
    return urls;
  }

  function buildTrials() {
    const urls = decodeImageUrls();
    let next = 0;
    const take = (n) => urls.slice(next, (next += n));
    return data.trials.map((t) => {
      const type = t.type || DEFAULT_TYPE;
      return { ...t, type, ...TRIAL_TYPES[type].build(t, take) };
    });
  }

  function show(name) {
    for (const screen of document.querySelectorAll(".screen")) {
      screen.hidden = screen.id !== "screen-" + name;
    }
    window.scrollTo(0, 0);
  }

  /* Sizes that fit the window: two queries and two answer rows tall, three columns of
   * references on each side of the centre. */
  function layout() {
    const root = document.documentElement.style;
    const query = bounded(Math.floor((innerHeight - 200) / 2), 96, 360);
    const byWidth = Math.floor((innerWidth - query - 220) / 6);
    const byHeight = Math.floor((innerHeight - 130) / 3);
    root.setProperty("--q", query + "px");
    root.setProperty("--r", bounded(byWidth < byHeight ? byWidth : byHeight, 36, 200) + "px");
  }

  /* The worked examples: each trial type draws its own from the task's trials. */
  function fillExamples(trials) {
    for (const [name, type] of Object.entries(TRIAL_TYPES)) {
      if (type.example) type.example(trials.filter((t) => t.type === name));
    }
  }

  /* Preloading: every image is fetched (and kept) before the task can start. */
  const keptImages = [];
  function preload(urls, onProgress) {
    const unique = [...new Set(urls)];
    let settled = 0;
    const failed = [];
    onProgress(0, unique.length);
    return Promise.all(unique.map((url) => new Promise((resolve) => {
      const img = new Image();
      img.onload = () => { keptImages.push(img); settled++; onProgress(settled, unique.length); resolve(); };
      img.onerror = () => { failed.push(url); settled++; onProgress(settled, unique.length); resolve(); };
      img.src = url;
    }))).then(() => failed);
  }

  async function loadAll(trials) {
    const bar = byId("load-bar");
    const status = byId("load-status");
    const retry = byId("load-retry");
    const progress = (done, total) => {
      bar.style.width = (total ? (100 * done) / total : 100).toFixed(1) + "%";
      status.textContent = "Loading images: " + done + " of " + total;
    };
    let pending = trials.flatMap((t) => TRIAL_TYPES[t.type].urls(t));
    for (;;) {
      const failed = await preload(pending, progress);
      if (failed.length === 0) break;
      status.textContent = failed.length + " image" + (failed.length === 1 ? "" : "s") +
        " could not be loaded. Check your connection, then try again.";
      retry.hidden = false;
      await clicked(retry);
      retry.hidden = true;
      pending = failed;
    }
    status.textContent = "All images are loaded.";
  }

  function windowFits() {
    return innerWidth >= settings.window[0] && innerHeight >= settings.window[1];
  }

  /* Instructions: the task starts once every image is loaded and the window is big enough. */
  async function instructions(trials) {
    show("instructions");
    const startedAt = performance.now();
    const start = byId("start");
    let loaded = false;
    const refresh = () => {
      const fits = windowFits();
      byId("too-small").hidden = fits;
      byId("window-now").textContent =
        "This window is now " + innerWidth + " \u00d7 " + innerHeight + " pixels.";
      const wasDisabled = start.disabled;
      start.disabled = !(loaded && fits);
      if (wasDisabled && !start.disabled) start.focus();
    };
    window.addEventListener("resize", refresh);
    refresh();
    loadAll(trials).then(() => { loaded = true; refresh(); });
    await clicked(start);
    window.removeEventListener("resize", refresh);
    return performance.now() - startedAt;
  }

  /* One trial, run by its type; the response comes back without its round. */
  function runTrial(trial, label) {
    return TRIAL_TYPES[trial.type].run(trial, label);
  }

  function fillText(box, values) {
    for (const [name, value] of Object.entries(values)) {
      for (const element of box.querySelectorAll("." + name)) element.textContent = value;
    }
  }

  async function message(templateId, values = {}) {
    const box = byId("message-text");
    box.replaceChildren(byId(templateId).content.cloneNode(true));
    fillText(box, values);
    show("message");
    const button = byId("message-continue");
    button.focus();
    await clicked(button);
  }

  /* Practice rounds repeat until one has no mistake or the attempts are used up. */
  async function practice(trials, responses) {
    if (trials.length === 0) return 0;
    await message("text-practice", { "practice-count": trials.length });
    for (let round = 1; ; round++) {
      let mistakes = 0;
      for (const [i, trial] of trials.entries()) {
        const result = await runTrial(trial, "Practice " + (i + 1) + " of " + trials.length);
        responses.push({ ...result, round });
        const type = TRIAL_TYPES[trial.type];
        const right = type.isRight(trial, result);
        if (!right) mistakes++;
        await type.feedback(trial, right);
      }
      if (mistakes === 0) {
        await message("text-practice-passed");
        return round;
      }
      if (round >= settings.attempts) {
        await message("text-practice-exhausted");
        return round;
      }
      await message("text-practice-retry");
    }
  }

  /* A trial's block: its number in a lab design, else its reference type. */
  const blockOf = (trial) => (trial.blk === undefined ? "c:" + trial.cond : "b:" + trial.blk);

  /* Test trials block by block: a break between blocks, feedback where the page has the
   * answers, a block's score where asked. `counter` counts across the task's stretches. */
  async function testTrials(trials, responses, counter) {
    if (trials.length === 0) return;
    if (counter.trialsDone === 0) await message("text-main");
    let right = 0;
    let inBlock = 0;
    for (const [i, trial] of trials.entries()) {
      const result = await runTrial(trial, "Trial " + (counter.trialsDone + 1) + " of " +
                                    counter.trialsTotal);
      responses.push({ ...result, round: 1 });
      counter.trialsDone++;
      inBlock++;
      const type = TRIAL_TYPES[trial.type];
      if (trial.answer !== undefined) {
        const isRight = type.isRight(trial, result);
        if (isRight) right++;
        await type.feedback(trial, isRight);
      }
      const next = trials[i + 1];
      if (next !== undefined && blockOf(next) === blockOf(trial)) continue;
      counter.blocksDone++;
      const values = { "blocks-done": counter.blocksDone, "blocks-total": counter.blocksTotal,
                       "block-right": right, "block-trials": inBlock };
      if (settings.block_score) {
        await message("text-block-score", values);
      } else if (counter.blocksDone < counter.blocksTotal) {
        const same = next !== undefined && next.cond === trial.cond;
        await message(same ? "text-block-continue" : "text-block-break", values);
      }
      right = 0;
      inBlock = 0;
    }
  }

  async function ratings(trials, responses) {
    await message("text-rating");
    for (const [i, trial] of trials.entries()) {
      const result = await runTrial(trial, "Rating " + (i + 1) + " of " + trials.length);
      responses.push({ ...result, round: 1 });
    }
  }

  /* The trials as stretches of one kind (ratings, a practice block, test trials), each run
   * by its function; returns the most rounds a practice stretch took. */
  async function runStretches(trials, responses) {
    const kind = (t) => (t.phase === "practice" ? "p:" + blockOf(t) : t.phase);
    const stretches = [];
    for (const trial of trials) {
      const last = stretches[stretches.length - 1];
      if (last && last.kind === kind(trial)) last.trials.push(trial);
      else stretches.push({ kind: kind(trial), phase: trial.phase, trials: [trial] });
    }
    const tests = trials.filter((t) => t.phase === "test");
    const counter = {
      trialsDone: 0, trialsTotal: tests.length, blocksDone: 0,
      blocksTotal: tests.filter((t, i) => i === 0 || blockOf(t) !== blockOf(tests[i - 1])).length,
    };
    let rounds = 0;
    for (const stretch of stretches) {
      if (stretch.phase === "practice") {
        const used = await practice(stretch.trials, responses);
        if (used > rounds) rounds = used;
      } else if (stretch.phase === "test") {
        await testTrials(stretch.trials, responses, counter);
      } else {
        await ratings(stretch.trials, responses);
      }
    }
    return rounds;
  }

  // At most n characters (code points, as the answer's checks count them): slice() counts
  // UTF-16 units and could cut an emoji in half, which no JSON parser reads as text.
  function cutText(text, n) {
    return Array.from(text).slice(0, n).join("");
  }

  function askQuestionnaire() {
    show("questionnaire");
    const form = byId("questionnaire");
    const first = form.querySelector("input, button");
    if (first) first.focus();
    return new Promise((resolve) => {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        if (!settings.questionnaire) return resolve(null);
        const fields = form.elements;
        resolve({
          cnn_experience: Number(fields.namedItem("cnn").value),
          fv_experience: Number(fields.namedItem("fv").value),
          feedback: cutText(byId("comments").value, 5000),
        });
      }, { once: true });
    });
  }

  function submit(payload) {
    show("done");
    const form = byId("mturk-form");
    const base = (params.get("turkSubmitTo") || "").replace(/\/+$/, "");
    form.setAttribute("action", base + "/mturk/externalSubmit");
    form.elements.namedItem("assignmentId").value = assignmentId;
    form.elements.namedItem("data").value = JSON.stringify(payload);
    form.submit();
  }

  /* The trial types of this task, each from its own script (see the top of this file). */
  const TRIAL_TYPES = {
{% for part in trial_parts %}
    {{ part.name | tojson }}: (() => {
{% include part.name ~ "/trial.js" %}
    })(),
{% endfor %}
  };

  async function run() {
    const trials = buildTrials();
    layout();
    window.addEventListener("resize", layout);
    fillExamples(trials);
    if (previewing) {
      show("preview");
      return;
    }
    const instructionsMs = await instructions(trials);
    const responses = [];
    const practiceRounds = await runStretches(trials, responses);
    const questionnaire = await askQuestionnaire();
    submit({
      schema_version: 1,
      task_id: data.task,
      trials: responses,
      practice_rounds: practiceRounds,
      timing: {
        instructions_ms: Math.round(instructionsMs),
        total_ms: Math.round(performance.now()),
      },
      questionnaire,
      client: {
        window_width: innerWidth,
        window_height: innerHeight,
        user_agent: cutText(navigator.userAgent, 1000),
      },
    });
  }

  run();
})();
