/* Stand-in for the browser side of the WebUI's InputAccordion (javascript/inputAccordion.js in
 * A1111 v1.10.1 and Forge): our own re-implementation of its behaviour, for the browser tests.
 *
 * - A visible checkbox is put into the accordion's header; it mirrors the hidden gradio checkbox
 *   (#<id>-checkbox), whose value is what the script receives.
 * - Opening/closing the accordion ticks/unticks it, as long as the user has not clicked the
 *   visible checkbox itself (that unlinks the two, so a closed accordion can stay enabled).
 * - inputAccordionChecked(id, checked), called when the server sets the checkbox, opens or closes
 *   the accordion to match.
 */
function inputAccordionChecked(id, checked) {
    var accordion = gradioApp().getElementById ? gradioApp().getElementById(id) : document.getElementById(id);
    if (!accordion || !accordion.standinVisible) {
        return;
    }
    accordion.standinVisible.checked = checked;
    accordion.standinSync();
}

function standinSetupInputAccordion(accordion) {
    var header = accordion.querySelector(".label-wrap");
    var hidden = gradioApp().querySelector("#" + accordion.id + "-checkbox input");
    if (!header || !hidden || accordion.standinVisible) {
        return;
    }
    var extra = gradioApp().querySelector("#" + accordion.id + "-extra");
    var title = header.querySelector("span");
    var linked = true;

    function isOpen() {
        return header.classList.contains("open");
    }

    var visible = document.createElement("input");
    visible.type = "checkbox";
    visible.id = accordion.id + "-visible-checkbox";
    visible.className = (hidden.className || "") + " input-accordion-checkbox";
    visible.checked = isOpen();
    (title || header).insertBefore(visible, (title || header).firstChild);
    if (extra) {
        header.insertBefore(extra, header.lastElementChild);
    }

    accordion.standinVisible = visible;
    accordion.standinSync = function() {
        if (linked && isOpen() !== visible.checked) {
            header.click();
        }
        if (hidden.checked !== visible.checked) {
            hidden.checked = visible.checked;
            updateInput(hidden);
            hidden.dispatchEvent(new Event("change", {bubbles: true}));
        }
    };

    new MutationObserver(function() {
        accordion.classList.toggle("input-accordion-open", isOpen());
        if (linked && visible.checked !== isOpen()) {
            visible.checked = isOpen();
            accordion.standinSync();
        }
    }).observe(header, {attributes: true, attributeFilter: ["class"]});

    visible.addEventListener("click", function(event) {
        linked = false;
        event.stopPropagation();
    });
    visible.addEventListener("input", accordion.standinSync);
    visible.addEventListener("change", accordion.standinSync);
}

onUiLoaded(function() {
    gradioApp().querySelectorAll(".input-accordion").forEach(standinSetupInputAccordion);
});
