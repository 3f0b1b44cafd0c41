/* The rating trial: the explanation's images beside the images it is rated for, a question
 * and a slider (a native range input, so the arrow keys, Page Up/Down, Home and End move it).
 * This is the body of a function the page's script calls with its helpers in scope (byId,
 * sleep, nextFrame, show, settings); it returns the trial type. The answer can be sent only
 * once the slider has moved; the reaction time runs from the first frame with every image on
 * screen to the answer. */
const slider = byId("rating-slider");
const submit = byId("rating-submit");
const value = byId("rating-value");
const hint = byId("rating-hint");

function fill(grid, urls) {
  if (!grid) return;
  grid.replaceChildren(...urls.map((url) => {
    const img = new Image();
    img.alt = "";
    img.src = url;
    return img;
  }));
  grid.style.setProperty("--cols", urls.length > 4 ? 3 : urls.length > 1 ? 2 : 1);
}

function answered() {
  return new Promise((resolve) => {
    const done = () => {
      slider.removeEventListener("input", moved);
      slider.removeEventListener("keydown", onKey);
      submit.removeEventListener("click", done);
      resolve(performance.now());
    };
    const moved = () => {
      value.textContent = slider.value;
      slider.setAttribute("aria-valuetext", slider.value);
      submit.disabled = false;
      hint.hidden = true;
    };
    const onKey = (event) => {
      if (event.key === "Enter" && !submit.disabled) {
        event.preventDefault();
        done();
      }
    };
    slider.addEventListener("input", moved);
    slider.addEventListener("keydown", onKey);
    submit.addEventListener("click", done);
  });
}

return {
  /* The item's images: the explanation's, then the given ones. */
  build(item, take) {
    return { explanation: take(item.n[0]), given: take(item.n[1]) };
  },

  urls: (trial) => [...trial.explanation, ...trial.given],

  async run(trial, label) {
    if (document.activeElement) document.activeElement.blur();
    show("rating");
    byId("rating-counter").textContent = label;
    fill(byId("rating-explanation"), trial.explanation);
    fill(byId("rating-given"), trial.given);
    const [low, high] = trial.scale;  // the slider's bounds come with the page's markup
    slider.value = String(Math.round((low + high) / 2));
    slider.removeAttribute("aria-valuetext");
    value.textContent = "";
    submit.disabled = true;
    hint.hidden = false;
    const screen = byId("screen-rating");
    const decoded = [...screen.querySelectorAll("img")].map((img) => img.decode().then(
      () => undefined, () => undefined));
    await Promise.all(decoded);
    await nextFrame();
    await nextFrame();
    const shownAt = performance.now();
    slider.focus();
    const at = await answered();
    return {
      trial_id: trial.id,
      rating: Number(slider.value),
      rt_ms: Math.round((at - shownAt) * 10) / 10,
    };
  },

  isRight: () => true,
  async feedback() {},
};
