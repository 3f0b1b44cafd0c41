/* The 2-AFC trial: references left and right, two queries, six answer buttons (keys 1 2 3
 * for the top query, Q W E for the bottom one). This is the body of a function the page's
 * script calls with its helpers in scope (byId, sleep, nextFrame, show, settings, fillText);
 * it returns the trial type: how many image URLs a trial takes, how to run it, and how to
 * give practice feedback. */
const KEYS = {
  Digit1: ["top", 1], Digit2: ["top", 2], Digit3: ["top", 3],
  Numpad1: ["top", 1], Numpad2: ["top", 2], Numpad3: ["top", 3],
  KeyQ: ["bottom", 1], KeyW: ["bottom", 2], KeyE: ["bottom", 3],
};
const stage = byId("stage");
const queryTop = byId("query-top");
const queryBottom = byId("query-bottom");
let awaitingAnswer = null;

function fillGroup(group, urls) {
  const grid = group.querySelector(".grid");
  grid.replaceChildren(...urls.map((url) => {
    const img = new Image();
    img.alt = "";
    img.src = url;
    return img;
  }));
  grid.style.setProperty("--cols", urls.length > 4 ? 3 : urls.length > 1 ? 2 : 1);
  group.classList.toggle("empty", urls.length === 0);
}

function answer(response, confidence) {
  if (!awaitingAnswer) return;
  const resolve = awaitingAnswer;
  awaitingAnswer = null;
  resolve({ response, confidence, at: performance.now() });
}

for (const button of document.querySelectorAll(".answer")) {
  button.addEventListener("click", () =>
    answer(button.dataset.response, Number(button.dataset.confidence)));
}
document.addEventListener("keydown", (event) => {
  const key = KEYS[event.code];
  if (!key || !awaitingAnswer || event.repeat || event.ctrlKey || event.metaKey || event.altKey) {
    return;
  }
  event.preventDefault();
  answer(key[0], key[1]);
});

return {
  /* The item's images: left references, right references, top query, bottom query. */
  build(item, take) {
    const left = take(item.n[0]);
    const right = take(item.n[1]);
    const [top, bottom] = take(2);
    return { left, right, top, bottom };
  },

  urls: (trial) => [...trial.left, ...trial.right, trial.top, trial.bottom],

  /* The worked example: the first practice trial, with its answer framed. */
  example(trials) {
    const example = trials.find((t) => t.phase === "practice");
    if (!example) return;
    for (const figure of document.querySelectorAll(".example")) {
      const [left, right] = figure.querySelectorAll(".group");
      fillGroup(left, example.left);
      fillGroup(right, example.right);
      const [top, bottom] = figure.querySelectorAll(".query");
      top.src = example.top;
      bottom.src = example.bottom;
      (example.answer === "top" ? top : bottom).classList.add("solution");
      figure.querySelector(".answer-position").textContent = example.answer;
    }
  },

  /* One trial. Reaction time runs from the first frame on which every image of the trial is
   * on screen (images decoded, stage made visible, two animation frames later) to the answer. */
  async run(trial, label) {
    if (document.activeElement) document.activeElement.blur();
    stage.classList.add("blank");
    show("trial");
    byId("trial-counter").textContent = label;
    byId("feedback").replaceChildren();
    fillGroup(byId("group-left"), trial.left);
    fillGroup(byId("group-right"), trial.right);
    queryTop.src = trial.top;
    queryBottom.src = trial.bottom;
    const decoded = [...stage.querySelectorAll("img")].map((img) => img.decode().then(
      () => undefined, () => undefined));
    await Promise.all([sleep(settings.iti_ms), ...decoded]);
    stage.classList.remove("blank");
    await nextFrame();
    await nextFrame();
    const shownAt = performance.now();
    stage.classList.add("ready");
    const choice = await new Promise((resolve) => { awaitingAnswer = resolve; });
    stage.classList.remove("ready");
    return {
      trial_id: trial.id,
      response: choice.response,
      confidence: choice.confidence,
      rt_ms: Math.round((choice.at - shownAt) * 10) / 10,
    };
  },

  isRight: (trial, result) => result.response === trial.answer,

  async feedback(trial, right) {
    const box = byId("feedback");
    box.replaceChildren(byId(right ? "text-correct" : "text-wrong").content.cloneNode(true));
    fillText(box, { "answer-position": trial.answer });
    const solution = trial.answer === "top" ? queryTop : queryBottom;
    solution.classList.add("solution");
    await sleep(settings.feedback_ms);
    solution.classList.remove("solution");
    box.replaceChildren();
  },
};
