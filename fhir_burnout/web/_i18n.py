"""Messages in Dutch (default) and English, and choosing the person's language."""

from __future__ import annotations

from collections.abc import Iterable

LANGUAGES = ("nl", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "app_name": {"nl": "Herstellen van burn-out", "en": "Recovering from burn-out"},
    "welcome_patient": {"nl": "Welkom, {name}.", "en": "Welcome, {name}."},
    "welcome_practitioner": {"nl": "Welkom, {name}.", "en": "Welcome, {name}."},
    "you_are_practitioner": {
        "nl": "Je bent ingelogd als behandelaar.",
        "en": "You are signed in as a care professional.",
    },
    "you_are_patient": {
        "nl": "Je bent ingelogd met je eigen gegevens.",
        "en": "You are signed in with your own details.",
    },
    "banner_patient": {"nl": "Cliënt", "en": "Client"},
    "banner_born": {"nl": "geboren", "en": "born"},
    "banner_identifier": {"nl": "nummer", "en": "number"},
    "not_granted": {
        "nl": "Het EHR gaf niet alle toegang. Dit werkt daardoor niet:",
        "en": "The EHR did not give all access. Because of that, this will not work:",
    },
    "now_in_phase": {"nl": "Je zit nu in {phase}.", "en": "You are now in {phase}."},
    "opened_by_practitioner": {
        "nl": "Je behandelaar heeft deze fase voor je opengezet.",
        "en": "Your care professional opened this phase for you.",
    },
    "programme_paused": {
        "nl": "Je programma staat even stil: je behandelaar heeft het gepauzeerd. Alles wat je "
        "al deed, blijft bewaard. Als het verder gaat, zie je hier weer wat je kunt doen.",
        "en": "Your programme is on pause: your care professional paused it. Everything you "
        "did so far is kept. When it goes on, you will see here again what you can do.",
    },
    "invite_title": {"nl": "Je uitnodiging", "en": "Your invitation"},
    "invite_intro": {
        "nl": "Heb je van de praktijk een code gekregen? Vul die hier in. Daarna log je in "
        "met je eigen gegevens, zoals bij de praktijk.",
        "en": "Did the practice give you a code? Fill it in here. Then you sign in with your "
        "own details, as at the practice.",
    },
    "invite_code_label": {
        "nl": "Code (bijvoorbeeld AB12-CD34)",
        "en": "Code (for example AB12-CD34)",
    },
    "invite_continue": {"nl": "Verder", "en": "Continue"},
    "invite_code_missing": {
        "nl": "Vul de code in die je kreeg.",
        "en": "Fill in the code you were given.",
    },
    "invite_accepted": {
        "nl": "Welkom! Je uitnodiging is gelukt. Hieronder zie je waar je kunt beginnen.",
        "en": "Welcome! Your invitation worked. Below you can see where to start.",
    },
    "invite_not_yours": {
        "nl": "Deze code kennen we niet, of hij hoort bij iemand anders. Kijk de code nog eens "
        "na, of vraag de praktijk om een nieuwe.",
        "en": "We do not know this code, or it belongs to someone else. Check the code again, "
        "or ask the practice for a new one.",
    },
    "notes_heading": {
        "nl": "Berichten van je behandelaar",
        "en": "Messages from your care professional",
    },
    "modules_done": {
        "nl": "{done} van de {total} modules gedaan.",
        "en": "{done} of {total} modules done.",
    },
    "next_module": {"nl": "Hierna:", "en": "Next:"},
    "due_now": {"nl": "Klaar om in te vullen", "en": "Ready to fill in"},
    "phase_open": {"nl": "open", "en": "open"},
    "phase_locked": {"nl": "nog dicht", "en": "not open yet"},
    "phase_done": {"nl": "klaar", "en": "done"},
    "not_enrolled": {
        "nl": "Je bent nog niet aangemeld voor het programma. Je behandelaar kan dat voor je doen.",
        "en": "You are not enrolled in the programme yet. Your care professional can do that for you.",
    },
    # --- the care professional's pages (web/_practitioner_pages.py) ---
    "pract_title": {"nl": "Overzicht van de cliënt", "en": "Client overview"},
    "pract_link": {"nl": "Overzicht van deze cliënt", "en": "Overview of this client"},
    "practice_link": {"nl": "Praktijkoverzicht", "en": "Practice overview"},
    "pract_nav": {"nl": "Behandelaar", "en": "Care professional"},
    "pract_back_home": {"nl": "Terug naar de startpagina", "en": "Back to the first page"},
    "pract_alerts": {"nl": "Veiligheidssignalen", "en": "Safety signals"},
    "pract_alert_text": {
        "nl": "Veiligheidssignaal in {title} ({date}): neem vandaag contact op met de cliënt.",
        "en": "Safety signal in {title} ({date}): contact the client today.",
    },
    "pract_alert_close": {"nl": "Contact gehad, afsluiten", "en": "Contact taken, close"},
    "pract_requests": {"nl": "Gevraagd van jou", "en": "Asked of you"},
    "pract_request_text": {
        "nl": "De vorige fase is klaar ({date}): {phase} kan open.",
        "en": "The previous phase is done ({date}): {phase} can open.",
    },
    "pract_programmes": {"nl": "Programma", "en": "Programme"},
    "enrolment_active": {"nl": "loopt", "en": "running"},
    "enrolment_on-hold": {"nl": "gepauzeerd", "en": "paused"},
    "enrolment_completed": {"nl": "afgerond", "en": "finished"},
    "enrolment_revoked": {"nl": "gestopt", "en": "stopped"},
    "pract_since": {"nl": "Sinds {date}.", "en": "Since {date}."},
    "pract_follows": {
        "nl": "Overgestapt vanuit een ander traject; wat al gedaan was, telt mee.",
        "en": "Switched from another track; what was done already counts.",
    },
    "pract_followed_by": {
        "nl": "Voortgezet in een ander traject.",
        "en": "Carried on in another track.",
    },
    "pract_invitation": {"nl": "Uitnodigingscode: {code}.", "en": "Invitation code: {code}."},
    "pract_invitation_accepted": {"nl": "(gebruikt)", "en": "(used)"},
    "pract_opened_on": {"nl": "opengezet op {date}", "en": "opened on {date}"},
    "pract_modules_done": {
        "nl": "{done} van de {total} modules gedaan.",
        "en": "{done} of {total} modules done.",
    },
    "pract_unlock": {"nl": "Openzetten: {phase}", "en": "Open: {phase}"},
    "pract_pause": {"nl": "Pauzeren", "en": "Pause"},
    "pract_resume": {"nl": "Hervatten", "en": "Resume"},
    "pract_switch": {"nl": "Overstappen naar: {track}", "en": "Switch to: {track}"},
    "pract_finish": {"nl": "Afronden", "en": "Finish"},
    "pract_stop": {"nl": "Stoppen", "en": "Stop"},
    "pract_note_label": {
        "nl": "Bericht voor de cliënt (zichtbaar op diens startpagina)",
        "en": "Message for the client (shown on their first page)",
    },
    "pract_note_send": {"nl": "Bericht versturen", "en": "Send message"},
    "pract_notes_sent": {"nl": "Verstuurde berichten", "en": "Messages sent"},
    "pract_not_enrolled": {
        "nl": "Deze cliënt doet nog niet mee aan het programma.",
        "en": "This client is not in the programme yet.",
    },
    "pract_enrol_label": {"nl": "Aanmelden voor", "en": "Enrol in"},
    "pract_enrol": {"nl": "Aanmelden", "en": "Enrol"},
    "pract_scores": {"nl": "Scores door de tijd", "en": "Scores over time"},
    "pract_chart_desc": {
        "nl": "De scores door de tijd; de tabel eronder geeft dezelfde cijfers.",
        "en": "The scores over time; the table below gives the same figures.",
    },
    "pract_band": {"nl": "Afkapwaarde (band)", "en": "Cut-off band"},
    "rci_improved": {"nl": "Betrouwbaar verbeterd.", "en": "Reliably improved."},
    "rci_no-change": {"nl": "Geen betrouwbare verandering.", "en": "No reliable change."},
    "rci_worse": {"nl": "Betrouwbaar verslechterd.", "en": "Reliably worse."},
    "rci_detail": {
        "nl": "Van {first} naar {last}; pas een verschil van {threshold} punten of meer is "
        "betrouwbaar (Jacobson-Truax).",
        "en": "From {first} to {last}; only a difference of {threshold} points or more is "
        "reliable (Jacobson-Truax).",
    },
    "rci_unknown": {
        "nl": "Voor deze score is geen gepubliceerde betrouwbaarheid: geen oordeel over "
        "betrouwbare verandering.",
        "en": "This score has no published reliability: no verdict on reliable change.",
    },
    "pract_no_scores": {"nl": "Nog geen scores.", "en": "No scores yet."},
    "pract_answers": {"nl": "Antwoorden van de cliënt", "en": "The client's answers"},
    "pract_no_answers": {"nl": "Nog geen antwoorden.", "en": "No answers yet."},
    "practice_title": {"nl": "Praktijkoverzicht", "en": "Practice overview"},
    "practice_alert": {
        "nl": "Cliënt {patient}: veiligheidssignaal sinds {date} (open: {n})",
        "en": "Client {patient}: safety signal since {date} (open: {n})",
    },
    "practice_stuck": {"nl": "Vastgelopen", "en": "Stuck"},
    "practice_stuck_text": {
        "nl": "Cliënt {patient}: al twee weken niets afgerond (laatste activiteit {date}).",
        "en": "Client {patient}: nothing finished for two weeks (last activity {date}).",
    },
    "practice_enrolled": {"nl": "Wie doet mee", "en": "Who is enrolled"},
    "practice_client": {"nl": "Cliënt", "en": "Client"},
    "practice_last": {"nl": "Laatste activiteit", "en": "Last activity"},
    "practice_state_alert": {"nl": "veiligheidssignaal", "en": "safety signal"},
    "practice_state_stuck": {"nl": "vastgelopen", "en": "stuck"},
    "practice_nobody": {"nl": "Nog niemand doet mee.", "en": "Nobody is enrolled yet."},
    "practice_dead": {"nl": "Niet afgeleverd bij het EHR", "en": "Not delivered to the EHR"},
    "practice_dead_intro": {
        "nl": "Het EHR weigerde deze gegevens. Ze zijn bewaard; latere gegevens van dezelfde "
        "cliënt wachten tot dit is opgelost (fhir-burnout sync retry).",
        "en": "The EHR refused these records. They are kept; later records of the same "
        "client wait until this is resolved (fhir-burnout sync retry).",
    },
    "practice_dead_item": {
        "nl": "Cliënt {patient}, {date}, HTTP {status}",
        "en": "Client {patient}, {date}, HTTP {status}",
    },
    "practice_dead_message": {"nl": "Melding van het EHR:", "en": "The EHR's message:"},
    "practice_dead_none": {
        "nl": "Alles is afgeleverd of onderweg.",
        "en": "Everything is delivered or on its way.",
    },
    "notice_enrolled": {"nl": "Aangemeld voor {track}.", "en": "Enrolled in {track}."},
    "notice_pause": {"nl": "Het programma is gepauzeerd.", "en": "The programme is paused."},
    "notice_resume": {"nl": "Het programma loopt weer.", "en": "The programme is running again."},
    "notice_stop": {"nl": "Het programma is gestopt.", "en": "The programme is stopped."},
    "notice_finish": {"nl": "Het programma is afgerond.", "en": "The programme is finished."},
    "notice_finish_after_care": {
        "nl": "Het programma is afgerond. Je kunt de cliënt nu nazorg aanbieden: kies hieronder "
        "het traject Na de behandeling.",
        "en": "The programme is finished. You can now offer the client after-care: choose the "
        "track After treatment below.",
    },
    "notice_unlock": {"nl": "De fase staat open.", "en": "The phase is open."},
    "notice_switch": {
        "nl": "Overgestapt; wat al gedaan was, is meegenomen.",
        "en": "Switched; what was done already came along.",
    },
    "notice_note": {"nl": "Het bericht is verstuurd.", "en": "The message is sent."},
    "notice_alert_closed": {
        "nl": "Het veiligheidssignaal is afgesloten.",
        "en": "The safety signal is closed.",
    },
    "error_practitioners_only": {
        "nl": "Deze pagina is alleen voor behandelaars.",
        "en": "This page is for care professionals only.",
    },
    "error_no_patient": {
        "nl": "Open het programma vanuit het dossier van een cliënt.",
        "en": "Please open the programme from a client's record.",
    },
    "error_action_not_found": {
        "nl": "Dit hoort niet (meer) bij het programma van deze cliënt. Er is niets veranderd.",
        "en": "This is not (or no longer) part of this client's programme. Nothing was changed.",
    },
    "error_action_state": {
        "nl": "Dit kan niet in de huidige stand van het programma. Er is niets veranderd.",
        "en": "This is not possible in the programme's current state. Nothing was changed.",
    },
    "error_action_changed": {
        "nl": "Iemand anders veranderde dit net. Er is niets veranderd; kijk en probeer opnieuw.",
        "en": "Someone else just changed this. Nothing was changed; look and try again.",
    },
    "error_not_this_practice": {
        "nl": "Het praktijkoverzicht is alleen voor behandelaars van deze praktijk.",
        "en": "The practice overview is only for care professionals of this practice.",
    },
    "error_practice_unchecked": {
        "nl": "Het EHR antwoordt nu niet, dus we kunnen niet nagaan of je bij deze praktijk "
        "werkt. Probeer het later nog eens.",
        "en": "The EHR does not answer now, so we cannot check that you work at this "
        "practice. Please try again later.",
    },
    # --- end of the care professional's pages ---
    "crisis_title": {"nl": "Direct hulp nodig?", "en": "Need help now?"},
    "crisis_113": {
        "nl": "Denk je aan zelfdoding? Bel 113 Zelfmoordpreventie: 0800-0113 (gratis, dag en nacht) of chat via 113.nl.",
        "en": "Thinking about suicide? Call 113 Suicide Prevention: 0800-0113 (free, day and night) or chat at 113.nl.",
    },
    "crisis_gp": {
        "nl": "Bel je huisarts, of 's avonds en in het weekend de huisartsenpost.",
        "en": "Call your GP, or in the evening and at weekends the out-of-hours GP service (huisartsenpost).",
    },
    "crisis_112": {
        "nl": "Is er direct gevaar? Bel 112.",
        "en": "In immediate danger? Call 112.",
    },
    "error_title": {"nl": "Dit lukte niet", "en": "This did not work"},
    "error_not_found": {
        "nl": "Deze pagina bestaat niet, of hoort niet bij jouw programma.",
        "en": "This page does not exist, or is not part of your programme.",
    },
    "error_form_expired": {
        "nl": "Het formulier was verlopen. Er is niets veranderd; probeer het nog een keer.",
        "en": "The form had expired. Nothing was changed; please try again.",
    },
    "error_not_now": {
        "nl": "Dit kan nu niet. Er is niets veranderd.",
        "en": "This is not possible now. Nothing was changed.",
    },
    "error_not_now_saved": {
        "nl": "Dit kan nu niet worden ingestuurd. Wat je invulde, is bewaard: je vindt het "
        "terug als je weer verder kunt.",
        "en": "This cannot be sent now. What you filled in has been kept: you will find it "
        "again when you can carry on.",
    },
    "error_too_large": {
        "nl": "Dit was te veel tekst in één keer. Wat je eerder opsloeg, is bewaard; maak het wat korter.",
        "en": "That was too much text at once. What you saved before is kept; please make it shorter.",
    },
    "required": {"nl": "verplicht", "en": "required"},
    "yes": {"nl": "Ja", "en": "Yes"},
    "no": {"nl": "Nee", "en": "No"},
    "send": {"nl": "Versturen", "en": "Send"},
    "entry_number": {"nl": "{group} {n}", "en": "{group} {n}"},
    "add_entry": {"nl": "Nog een toevoegen: {group}", "en": "Add another: {group}"},
    "remove_entry": {"nl": "Weghalen: {group} {n}", "en": "Remove: {group} {n}"},
    "save_for_later": {"nl": "Opslaan, later verder", "en": "Save, continue later"},
    "form_has_problems": {
        "nl": "Er is nog iets niet goed. Je antwoorden zijn bewaard; kijk bij de vragen hieronder.",
        "en": "Something is not right yet. Your answers are saved; see the questions below.",
    },
    "safety_title": {"nl": "Fijn dat je het laat weten", "en": "Thank you for telling us"},
    "safety_text": {
        "nl": "Je gaf aan dat je soms of vaak aan de dood of aan jezelf iets aandoen denkt. Je hoeft hier niet alleen mee te blijven. Praat er vandaag met iemand over.",
        "en": "You said you sometimes or often think about death or harming yourself. You do not have to carry this alone. Talk to someone about it today.",
    },
    "safety_practitioner": {  # issue 16: built from the practice's promise (config [safety])
        "nl": "{who} leest je antwoord {promise} en neemt daarna contact met je op. De app "
        "wordt niet dag en nacht bekeken. Gaat het nu niet? Wacht dan niet, maar bel 113, je "
        "huisarts of de huisartsenpost, of 112.",
        "en": "{who} reads your answer {promise} and will then contact you. The app is not "
        "watched day and night. Are things bad right now? Do not wait: call 113, your GP or "
        "the out-of-hours GP service, or 112.",
    },
    "reflection_intro": {
        "nl": "Na de oefening: hoe was het? Je mag alles overslaan. Wat je invult, ziet je behandelaar ook.",
        "en": "After the exercise: how was it? You may skip anything. Your care professional also sees what you fill in.",
    },
    "reflection_keep": {"nl": "Bewaren", "en": "Keep"},
    "reflection_saved": {
        "nl": "Dank je. Je antwoorden na de oefening zijn bewaard.",
        "en": "Thank you. Your answers after the exercise are kept.",
    },
    "reflection_has_problems": {
        "nl": "Er is nog iets niet goed; kijk bij de vragen hieronder. Er is nog niets bewaard.",
        "en": "Something is not right yet; see the questions below. Nothing has been kept yet.",
    },
    "energy_title": {"nl": "Je energiedagboek", "en": "Your energy diary"},
    "energy_intro": {
        "nl": "Zo ging je energie op de dagen die je invulde. Kijk of je pieken en dalen ziet, en wat je energie geeft of kost. Er is geen goed of fout.",
        "en": "This is how your energy went on the days you filled in. See if you notice peaks and dips, and what gives or costs you energy. There is no right or wrong.",
    },
    "energy_chart_desc": {
        "nl": "Je energie per dag, van 0 tot 10; de tabel hieronder geeft dezelfde cijfers.",
        "en": "Your energy per day, from 0 to 10; the table below gives the same figures.",
    },
    "energy_table": {"nl": "Energie per dag", "en": "Energy per day"},
    "energy_day": {"nl": "Energie van de dag (0-10)", "en": "Energy that day (0-10)"},
    "energy_balance": {
        "nl": "Opgeteld: gaf (+) of kostte (-)",
        "en": "Added up: gave (+) or cost (-)",
    },
    "energy_parts": {"nl": "Dagdelen", "en": "Parts of the day"},
    "energy_gives": {"nl": "Dit gaf je energie", "en": "This gave you energy"},
    "energy_costs": {"nl": "Dit kostte je energie", "en": "This cost you energy"},
    "energy_times": {"nl": "{n} keer", "en": "{n} times"},
    "energy_once": {"nl": "1 keer", "en": "once"},
    "progress_title": {"nl": "Hoe het gaat", "en": "How you are doing"},
    "progress_link": {"nl": "Bekijk hoe het gaat", "en": "See how you are doing"},
    "chart_desc": {
        "nl": "Je scores door de tijd; de tabel hieronder geeft dezelfde cijfers.",
        "en": "Your scores over time; the table below gives the same figures.",
    },
    "date": {"nl": "Datum", "en": "Date"},
    "score": {"nl": "Score", "en": "Score"},
    "meaning": {"nl": "Wat het betekent", "en": "What it means"},
    "no_scores_yet": {
        "nl": "Zodra je een vragenlijst hebt ingevuld, zie je hier je scores.",
        "en": "Once you have filled in a questionnaire, your scores show here.",
    },
    "exercises": {"nl": "Oefeningen stap voor stap", "en": "Exercises step by step"},
    "exercise_n": {"nl": "oefening {n}", "en": "exercise {n}"},
    "back_to_module": {"nl": "Terug naar de module", "en": "Back to the module"},
    "timer_title": {"nl": "Timer", "en": "Timer"},
    "timer_without_js": {
        "nl": "Deze oefening duurt ongeveer {minutes} minuten. Zet een wekker als je wilt.",
        "en": "This exercise takes about {minutes} minutes. Set an alarm if you like.",
    },
    "timer_start": {"nl": "Start de timer", "en": "Start the timer"},
    "timer_pause": {"nl": "Pauze", "en": "Pause"},
    "timer_resume": {"nl": "Verder", "en": "Continue"},
    "timer_again": {"nl": "Opnieuw", "en": "Again"},
    "timer_paused": {"nl": "De timer staat op pauze.", "en": "The timer is paused."},
    "timer_started": {"nl": "De timer loopt.", "en": "The timer is running."},
    "timer_done": {
        "nl": "De tijd is om. Neem rustig de tijd om terug te komen.",
        "en": "Time is up. Take your time to come back.",
    },
    "timer_minutes": {"nl": "Nog {n} minuten.", "en": "{n} minutes left."},
    "back_home": {"nl": "Terug naar je overzicht", "en": "Back to your overview"},
    "about_minutes": {"nl": "Ongeveer {minutes} minuten.", "en": "About {minutes} minutes."},
    "mark_done": {"nl": "Klaar met deze module", "en": "I have finished this module"},
    "module_is_done": {"nl": "Deze module heb je gedaan.", "en": "You have finished this module."},
    "error_untrusted": {
        "nl": "Dit EHR is niet gekoppeld aan het programma. Vraag je praktijk om hulp.",
        "en": "This EHR is not connected to the programme. Please ask your practice for help.",
    },
    "error_launch": {
        "nl": "Het openen van het programma is niet gelukt. Open het programma opnieuw vanuit je EHR of patiëntenportaal.",
        "en": "Opening the programme did not work. Please open it again from your EHR or patient portal.",
    },
    "error_expired_saved": {
        "nl": "Je sessie is verlopen. Wat je net invulde, is bewaard. Open het programma opnieuw vanuit je EHR of patiëntenportaal en ga verder waar je was.",
        "en": "Your session has ended. What you just filled in has been kept. Please open the programme again from your EHR or patient portal and carry on where you left off.",
    },
    "error_expired": {
        "nl": "Je sessie is verlopen. Open het programma opnieuw vanuit je EHR of patiëntenportaal. Wat je al had ingevuld, is bewaard.",
        "en": "Your session has ended. Please open the programme again from your EHR or patient portal. What you already filled in has been kept.",
    },
    "error_signed_out": {
        "nl": "Je bent niet ingelogd. Open het programma vanuit je EHR of patiëntenportaal.",
        "en": "You are not signed in. Please open the programme from your EHR or patient portal.",
    },
    # --- K4: the Koppeltaal launch -------------------------------------------------------
    "kt_reference": {
        "nl": "Referentie voor de helpdesk: {reference}",
        "en": "Reference for the helpdesk: {reference}",
    },
    "kt_error_untrusted": {
        "nl": "Dit portaal is niet via Koppeltaal aan het programma gekoppeld. Vraag je praktijk om hulp.",
        "en": "This portal is not connected to the programme through Koppeltaal. Please ask your practice for help.",
    },
    "kt_error_launch": {
        "nl": "Het openen van het programma is niet gelukt. Open de taak opnieuw vanuit je portaal of EPD.",
        "en": "Opening the programme did not work. Please open the task again from your portal or EHR.",
    },
    "kt_error_link": {
        "nl": "Deze link om het programma te openen is verlopen of al gebruikt. Open de taak opnieuw vanuit je portaal of EPD.",
        "en": "This link to open the programme has expired or was already used. Please open the task again from your portal or EHR.",
    },
    "kt_error_start_again": {
        "nl": "Het inloggen is niet afgerond of duurde te lang. Open de taak opnieuw vanuit je portaal of EPD.",
        "en": "Signing in was not finished or took too long. Please open the task again from your portal or EHR.",
    },
    "kt_error_not_yours": {
        "nl": "Deze taak hoort bij iemand anders. Open je eigen taak vanuit je portaal of EPD, of vraag je praktijk om hulp.",
        "en": "This task belongs to someone else. Please open your own task from your portal or EHR, or ask your practice for help.",
    },
    "kt_error_foreign": {
        "nl": "Deze taak is niet voor dit programma bedoeld. Vraag je praktijk om hulp.",
        "en": "This task is not meant for this programme. Please ask your practice for help.",
    },
    "kt_error_task_closed": {
        "nl": "Deze taak is afgesloten en kan niet meer worden geopend. Vraag je behandelaar om een nieuwe taak.",
        "en": "This task has been closed and can no longer be opened. Please ask your care professional for a new task.",
    },
    "kt_error_not_found": {
        "nl": "Deze taak bestaat niet meer. Vraag je praktijk om hulp.",
        "en": "This task no longer exists. Please ask your practice for help.",
    },
    "kt_error_unavailable": {
        "nl": "Het programma kan het Koppeltaal-netwerk nu niet bereiken. Probeer het over een paar minuten opnieuw.",
        "en": "The programme cannot reach the Koppeltaal network right now. Please try again in a few minutes.",
    },
    # --- K8: the results a Koppeltaal DocumentReference links to ----------------------------
    "ktr_title": {
        "nl": "Resultaten burn-outprogramma",
        "en": "Results of the burnout programme",
    },
    "ktr_about": {
        "nl": "Cliënt {patient}; overzicht van {date}.",
        "en": "Client {patient}; summary of {date}.",
    },
    "ktr_portal_first": {
        "nl": "Deze resultaten zijn alleen voor behandelaars. Open eerst de module vanuit het portaal of EPD en open daarna deze link opnieuw.",
        "en": "These results are for care professionals only. Please open the module from the portal or EHR first, then open this link again.",
    },
    "ktr_not_found": {
        "nl": "Deze resultaten bestaan niet (meer) bij dit programma.",
        "en": "These results do not exist (any more) in this programme.",
    },
    # --- end of K8 ---
    # --- safety rules and the practice's promise (issue 16, items 3 and 4) ---
    "safety_signal_urgent": {
        "nl": "Je gaf aan dat je aan de dood denkt, of aan jezelf iets aandoen. Je hoeft hier "
        "niet alleen mee te blijven. Praat er vandaag met iemand over.",
        "en": "You said you think about death, or about harming yourself. You do not have to "
        "carry this alone. Talk to someone about it today.",
    },
    "safety_routine_title": {
        "nl": "Dank je wel voor het invullen",
        "en": "Thank you for filling this in",
    },
    "safety_signal_routine": {
        "nl": "Je antwoorden laten zien dat het op dit moment zwaar voor je is. Goed dat je "
        "het eerlijk invulde.",
        "en": "Your answers show that things are hard for you at the moment. It is good that "
        "you filled this in honestly.",
    },
    "safety_promise_routine": {
        "nl": "{who} kijkt {promise} naar je antwoorden en bespreekt ze met je, uiterlijk bij "
        "jullie volgende contact. De app wordt niet dag en nacht bekeken. Gaat het ineens "
        "slechter? Wacht dan niet en gebruik de hulp hierboven.",
        "en": "{who} looks at your answers {promise} and talks them through with you, at the "
        "latest at your next contact. The app is not watched day and night. If things "
        "suddenly get worse, do not wait: use the help above.",
    },
    "safety_who_practitioner": {"nl": "Je behandelaar", "en": "Your care professional"},
    "safety_the_practice": {"nl": "De praktijk", "en": "The practice"},
    "pract_signal_urgent": {"nl": "Dringend", "en": "Urgent"},
    "pract_signal_routine": {"nl": "Routine", "en": "Routine"},
    "pract_signal_routine_text": {
        "nl": "Signaal in {title} ({date}): bekijk het vóór of bij het volgende contact.",
        "en": "Signal in {title} ({date}): review it before or at the next contact.",
    },
    "practice_alert_routine": {
        "nl": "Cliënt {patient}: signaal om te bekijken sinds {date} (open: {n}), vóór of bij "
        "het volgende contact",
        "en": "Client {patient}: signal to review since {date} (open: {n}), before or at the "
        "next contact",
    },
}


def choose_language(explicit: str | None, accept: Iterable[str]) -> str:
    """The EHR's locale when given, else the browser's first supported language, else Dutch."""
    for candidate in ([explicit] if explicit else []) + list(accept):
        short = (candidate or "").split("-")[0].split("_")[0].lower()
        if short in LANGUAGES:
            return short
    return LANGUAGES[0]


def format_date(value: str | None, lang: str) -> str:
    """A FHIR date the way people write it: 2-2-1972 in Dutch, 2 February 1972 in English."""
    if not value:
        return ""
    parts = value.split("-")
    if len(parts) != 3:
        return value  # a partial date (year or year-month) stays as it is
    year, month, day = (int(p) for p in parts)
    if lang == "en":
        months = ("January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December")  # fmt: skip
        return f"{day} {months[month - 1]} {year}"
    return f"{day}-{month}-{year}"


def translate(key: str, lang: str, **values: str) -> str:
    """A message in ``lang`` (Dutch when missing), with ``{placeholders}`` filled in."""
    texts = MESSAGES[key]
    return texts.get(lang, texts["nl"]).format(**values)
